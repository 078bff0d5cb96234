//! Window reduction: the window geometry shared by
//! `block_reduce`, `pyramid_tile` and `Accumulator`, and the row-parallel driver (the operators
//! live in `ops.rs` and are re-exported here).
//!
//! Every array is viewed as 4-D (leading axes of length 1 are prepended), so one driver serves
//! 1 to 4 dimensions. The driver works one *output row* (all output cells that share their
//! three outer indices) at a time: the input rows under that output row are folded
//! column-by-column into a short buffer of partial states (a contiguous, vectorisable loop), and
//! that buffer is then merged along the last axis, window by window.
use crate::dtype::Elem;
use crate::error::{KernelError, Result};
use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewD, Axis, Ix4};
use rayon::prelude::*;
use std::mem::MaybeUninit;

pub use crate::ops::*;

/// Window layout along one axis: window `j` covers input cells
/// `[max(j*s - p, 0), min((j+1)*s - p, n))`, for `j` in `0..out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ax {
    pub n: usize,
    pub s: usize,
    /// How many cells of the first window lie before the input (Accumulator tiles that start
    /// inside a window); 0 otherwise.
    pub p: usize,
    pub out: usize,
}

impl Ax {
    /// xarray `coarsen(boundary="trim")`: `n / s` windows, except that an axis shorter than its
    /// stride gives one window over all of it (an empty axis gives none).
    pub fn trim(n: usize, s: usize) -> Ax {
        let out = if n > 0 && n < s { 1 } else { n / s };
        Ax { n, s, p: 0, out }
    }
    /// Strict trim: only whole windows, possibly none.
    pub fn strict(n: usize, s: usize) -> Ax {
        Ax {
            n,
            s,
            p: 0,
            out: n / s,
        }
    }
    /// Every window the input touches, partial ones included (Accumulator tiles).
    pub fn touched(n: usize, s: usize, p: usize) -> Ax {
        Ax {
            n,
            s,
            p,
            out: (n + p).div_ceil(s),
        }
    }
    #[inline(always)]
    pub fn lo(&self, j: usize) -> usize {
        (j * self.s).saturating_sub(self.p)
    }
    #[inline(always)]
    pub fn hi(&self, j: usize) -> usize {
        ((j + 1) * self.s - self.p).min(self.n)
    }
}

pub type Geom = [Ax; 4];

/// Cells in a whole window of `g` (every window of a trim or strict geometry has this size), or
/// an error when a count would not fit the u32 counters.
pub fn window_cells(g: &Geom) -> Result<u32> {
    let cells: u128 = g.iter().map(|ax| (ax.s.min(ax.n.max(1))) as u128).product();
    u32::try_from(cells).map_err(|_| {
        KernelError::Invalid(format!(
            "windows of {cells} cells are too large (at most {} cells per window)",
            u32::MAX
        ))
    })
}

/// Cells in a whole window of stride `s` (Accumulator levels, where tiles may be partial).
pub fn stride_cells(s: &[usize; 4]) -> Result<u32> {
    let cells: u128 = s.iter().map(|&x| x as u128).product();
    u32::try_from(cells).map_err(|_| {
        KernelError::Invalid(format!(
            "windows of {cells} cells are too large (at most {} cells per window)",
            u32::MAX
        ))
    })
}

/// Output shape of a geometry.
pub fn out_shape(g: &Geom) -> [usize; 4] {
    [g[0].out, g[1].out, g[2].out, g[3].out]
}

/// Views an array of 1 to 4 dimensions as 4-D by prepending length-1 axes (no copy).
pub fn as4<T>(a: ArrayViewD<'_, T>) -> Result<ArrayView4<'_, T>> {
    let nd = a.ndim();
    if nd == 0 || nd > crate::any::MAX_NDIM {
        return Err(KernelError::BadNdim(nd));
    }
    let mut v = a;
    for _ in nd..4 {
        v = v.insert_axis(Axis(0));
    }
    Ok(v.into_dimensionality::<Ix4>().expect("4 axes"))
}

/// Checks a stride tuple against an array's dimensions and pads it to 4 axes.
pub fn check_stride(stride: &[i64], ndim: usize, what: &'static str) -> Result<[usize; 4]> {
    if stride.len() != ndim {
        return Err(KernelError::LengthMismatch {
            what,
            got: stride.len(),
            expected: ndim,
        });
    }
    if let Some(axis) = stride.iter().position(|&s| s <= 0) {
        return Err(KernelError::BadStride {
            stride: stride.to_vec(),
            axis,
        });
    }
    let mut out = [1usize; 4];
    for (o, &s) in out[4 - ndim..].iter_mut().zip(stride) {
        *o = usize::try_from(s)
            .map_err(|_| KernelError::Invalid(format!("stride {s} too large")))?;
    }
    Ok(out)
}

/// Below this many input cells a call runs on the calling thread: rayon's fork/join costs more
/// than it saves on small tiles.
pub const PAR_MIN_CELLS: usize = 1 << 18;

thread_local! {
    /// Set while a caller runs this thread's kernel calls without splitting them (`sequential`).
    static SEQUENTIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's kernel calls kept on this thread: no rayon split. For callers
/// that already run one call per core (the single-pass writer's tile threads), where splitting
/// each call again only oversubscribes the cores and spins rayon's idle workers.
pub fn sequential<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SEQUENTIAL.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(SEQUENTIAL.with(|c| c.replace(true)));
    f()
}

/// Whether a call over `cells` cells is split over rayon's threads.
pub fn split(cells: usize) -> bool {
    cells >= PAR_MIN_CELLS && rayon::current_num_threads() > 1 && !SEQUENTIAL.with(|c| c.get())
}
/// Input cells per rayon task (keeps tasks long enough to amortise scheduling).
const TASK_CELLS: usize = 1 << 16;

/// Reduces one output row. `rows` are the input rows under it (outer window axes flattened in
/// row-major order), `out` the output row.
pub trait RowKernel<X>: Sync {
    /// `Default` so the output can start as zeroed memory (for numbers: `calloc`, no extra pass).
    type O: Copy + Send + Sync + Default;
    type Scratch: Default + Send;
    /// Must initialise every cell of `out`.
    fn row(
        &self,
        sc: &mut Self::Scratch,
        rows: &[ArrayView1<'_, X>],
        ax: &Ax,
        out: &mut [MaybeUninit<Self::O>],
    );
}

/// Runs `k` over every output row of geometry `g`, in parallel when the work is large.
pub fn drive<X: Copy + Sync, K: RowKernel<X>>(
    a: ArrayView4<'_, X>,
    g: &Geom,
    k: &K,
) -> Array4<K::O> {
    let shape = out_shape(g);
    let o3 = shape[3];
    let nrows = shape[0] * shape[1] * shape[2];
    let n = nrows * o3;
    // Uninitialised output: every kernel writes each of its row's cells exactly once, so zeroing
    // first would be a wasted pass over memory.
    let mut out: Vec<K::O> = Vec::with_capacity(n);
    if n == 0 {
        return Array4::from_shape_vec(shape, out).expect("shape");
    }
    let cells = a.len();
    let row_cells = (cells / nrows).max(1);
    let work = |chunk: &mut [MaybeUninit<K::O>], first_row: usize, sc: &mut K::Scratch| {
        let mut rows: Vec<ArrayView1<'_, X>> = Vec::new();
        for (r, orow) in chunk.chunks_mut(o3).enumerate() {
            let r = first_row + r;
            let i2 = r % shape[2];
            let i1 = (r / shape[2]) % shape[1];
            let i0 = r / (shape[2] * shape[1]);
            rows.clear();
            for d0 in g[0].lo(i0)..g[0].hi(i0) {
                let a0 = a.index_axis(Axis(0), d0);
                for d1 in g[1].lo(i1)..g[1].hi(i1) {
                    let a1 = a0.index_axis_move(Axis(0), d1);
                    for d2 in g[2].lo(i2)..g[2].hi(i2) {
                        rows.push(a1.index_axis_move(Axis(0), d2));
                    }
                }
            }
            k.row(sc, &rows, &g[3], orow);
        }
    };
    if !split(cells) {
        let mut sc = K::Scratch::default();
        work(&mut out.spare_capacity_mut()[..n], 0, &mut sc);
    } else {
        let rows_per_task = (TASK_CELLS / row_cells).max(1);
        out.spare_capacity_mut()[..n]
            .par_chunks_mut(rows_per_task * o3)
            .enumerate()
            .for_each_init(K::Scratch::default, |sc, (t, chunk)| {
                work(chunk, t * rows_per_task, sc)
            });
    }
    // SAFETY: the rows above cover all `nrows` output rows and `RowKernel::row` initialises
    // every cell of the row it is given.
    unsafe { out.set_len(n) };
    Array4::from_shape_vec(shape, out).expect("shape")
}

/// Output columns handled per pass, so the column buffer stays in L1/L2 cache.
const COL_CHUNK_CELLS: usize = 2048;

/// The generic row kernel: any fold, any element, any strides.
pub struct Generic<'a, F, E> {
    pub fold: &'a F,
    pub emit: E,
}

impl<'a, X: Copy + Sync, F: Fold<X>, O: Copy + Send + Sync + Default, E: Fn(&F::S) -> O + Sync>
    RowKernel<X> for Generic<'a, F, E>
{
    type O = O;
    type Scratch = Vec<F::S>;
    fn row(
        &self,
        col: &mut Vec<F::S>,
        rows: &[ArrayView1<'_, X>],
        ax: &Ax,
        out: &mut [MaybeUninit<O>],
    ) {
        let per = (COL_CHUNK_CELLS / ax.s).max(1);
        let mut j0 = 0;
        while j0 < out.len() {
            let j1 = (j0 + per).min(out.len());
            let (c0, c1) = (ax.lo(j0), ax.hi(j1 - 1));
            col.clear();
            col.resize(c1 - c0, self.fold.empty());
            for r in rows {
                let r = r.slice(ndarray::s![c0..c1]);
                if let Some(sl) = r.as_slice() {
                    for (c, &x) in col.iter_mut().zip(sl) {
                        self.fold.push(c, x);
                    }
                } else {
                    for (c, &x) in col.iter_mut().zip(r.iter()) {
                        self.fold.push(c, x);
                    }
                }
            }
            let o = &mut out[j0..j1];
            if ax.p == 0 && j1 * ax.s <= ax.n {
                // Whole windows side by side: fixed-width chunks, no per-window bounds.
                for (o, w) in o.iter_mut().zip(col.chunks_exact(ax.s)) {
                    let mut st = w[0];
                    for c in &w[1..] {
                        self.fold.merge(&mut st, c);
                    }
                    *o = MaybeUninit::new((self.emit)(&st));
                }
            } else {
                for (j, o) in (j0..j1).zip(o.iter_mut()) {
                    let (lo, hi) = (ax.lo(j) - c0, ax.hi(j) - c0);
                    let mut st = self.fold.empty();
                    for c in &col[lo..hi] {
                        self.fold.merge(&mut st, c);
                    }
                    *o = MaybeUninit::new((self.emit)(&st));
                }
            }
            j0 = j1;
        }
    }
}

/// Reduces `a` over geometry `g` with operator `op` through the AoS generic kernel (the simple,
/// obviously-right path the vectorised kernels are tested against).
pub fn reduce_generic<T: Elem, K: Op<T>>(
    a: ArrayView4<'_, T>,
    g: &Geom,
    op: &K,
) -> Result<Array4<K::Out>> {
    let op = op.with_full(window_cells(g)?);
    let emit = |s: &K::S| op.finish(s);
    Ok(drive(a, g, &Generic { fold: &op, emit }))
}

/// `nearest`: the top-left cell of every window is a strided view of the input.
pub fn nearest<T: Elem>(a: ArrayView4<'_, T>, g: &Geom) -> Array4<T> {
    let shape = out_shape(g);
    let mut v = a;
    for (i, ax) in g.iter().take(3).enumerate() {
        v.slice_axis_inplace(
            Axis(i),
            ndarray::Slice::new(0, Some((ax.out * ax.s).min(ax.n) as isize), ax.s as isize),
        );
    }
    // The kept rows, whole, in logical (row-major) order whatever their strides' signs; each is
    // picked from as a slice when it is one, since the 4-D view's element iterator costs a few
    // nanoseconds a cell (a uint8 land cover spent more in it than in decoding).
    let (s, n) = (g[3].s, g[3].out);
    let mut out = Vec::with_capacity(shape.iter().product());
    for lane in v.rows() {
        match lane.as_slice() {
            Some(row) => pick(row, s, n, &mut out),
            None => out.extend(lane.iter().step_by(s).take(n).copied()),
        }
    }
    Array4::from_shape_vec(shape, out).expect("window count")
}

/// Appends `row[0], row[s], ..., row[(n - 1) * s]` to `out` (the last window may be partial:
/// an axis shorter than its stride still has one, `Ax::trim`).
#[inline]
fn pick<T: Copy>(row: &[T], s: usize, n: usize, out: &mut Vec<T>) {
    match s {
        1 => out.extend_from_slice(&row[..n]),
        // Whole pairs: a loop the compiler vectorises (the common 2x coarsening).
        2 if row.len() >= 2 * n => out.extend(row[..2 * n].chunks_exact(2).map(|p| p[0])),
        _ => out.extend(row.iter().step_by(s).take(n).copied()),
    }
}

/// The trim geometry (`block_reduce` shapes) of an array shape and padded stride.
pub fn trim_geom(shape: &[usize], stride: &[usize; 4]) -> Geom {
    std::array::from_fn(|i| Ax::trim(shape[i], stride[i]))
}

/// The strict-trim geometry (`pyramid_tile` shapes).
pub fn strict_geom(shape: &[usize], stride: &[usize; 4]) -> Geom {
    std::array::from_fn(|i| Ax::strict(shape[i], stride[i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::Missing;

    fn rg<T: Elem, K: Op<T>>(a: ArrayView4<'_, T>, g: &Geom, op: &K) -> Array4<K::Out> {
        crate::reduce::reduce_generic(a, g, op).unwrap()
    }
    use ndarray::{Array, ArrayD, IxDyn};

    fn mean_op<T: Elem>(fill: Option<T>, skipna: bool) -> SumOp<T, true> {
        SumOp::new(Missing::new(fill), skipna)
    }

    #[test]
    fn trim_shapes() {
        assert_eq!(Ax::trim(5, 2).out, 2);
        assert_eq!(Ax::trim(1, 4).out, 1);
        assert_eq!(Ax::trim(1, 4).hi(0), 1);
        assert_eq!(Ax::trim(0, 4).out, 0);
        assert_eq!(Ax::strict(3, 4).out, 0);
        let t = Ax::touched(3, 4, 2);
        assert_eq!((t.out, t.lo(0), t.hi(0), t.lo(1), t.hi(1)), (2, 0, 2, 2, 3));
    }

    #[test]
    fn mean_2x2_with_nan() {
        let a = Array::from_shape_vec(
            (2, 4),
            vec![
                1.0f32,
                2.0,
                f32::NAN,
                f32::NAN,
                3.0,
                4.0,
                f32::NAN,
                f32::NAN,
            ],
        )
        .unwrap()
        .into_dyn();
        let v = as4(a.view()).unwrap();
        let g = trim_geom(v.shape(), &[1, 1, 2, 2]);
        let r = rg(v, &g, &mean_op::<f32>(None, true));
        assert_eq!(r[[0, 0, 0, 0]], 2.5);
        assert!(r[[0, 0, 0, 1]].is_nan());
        let r = rg(v, &g, &mean_op::<f32>(Some(-1.0), true));
        assert_eq!(r[[0, 0, 0, 1]], -1.0);
    }

    #[test]
    fn int_mean_half_even_and_skipna_false() {
        let a: ArrayD<i16> = Array::from_shape_vec(IxDyn(&[4]), vec![1, 2, 3, 4]).unwrap();
        let v = as4(a.view()).unwrap();
        let g = trim_geom(v.shape(), &[1, 1, 1, 2]);
        let r = rg(v, &g, &mean_op::<i16>(None, true));
        assert_eq!(r.as_slice().unwrap(), &[2, 4]);
        let r = rg(v, &g, &mean_op::<i16>(Some(4), false));
        assert_eq!(r.as_slice().unwrap(), &[2, 4]);
        let r = rg(v, &g, &mean_op::<i16>(Some(4), true));
        assert_eq!(r.as_slice().unwrap(), &[2, 3]);
    }

    #[test]
    fn sum_and_extremes() {
        let a: ArrayD<u8> = Array::from_shape_vec(IxDyn(&[3, 3]), (0..9).collect()).unwrap();
        let v = as4(a.view()).unwrap();
        let g = trim_geom(v.shape(), &[1, 1, 5, 2]);
        let s = rg(v, &g, &SumOp::<u8, false>::new(Missing::new(None), true));
        assert_eq!(s.as_slice().unwrap(), &[1 + 3 + 4 + 6 + 7u64]);
        let m = rg(v, &g, &ExtOp::<u8, true>::new(Missing::new(Some(7)), true));
        assert_eq!(m.as_slice().unwrap(), &[6]);
        let m = rg(
            v,
            &g,
            &ExtOp::<u8, false>::new(Missing::new(Some(0)), false),
        );
        assert_eq!(m.as_slice().unwrap(), &[0]);
        let n = nearest(v, &trim_geom(v.shape(), &[1, 1, 2, 2]));
        assert_eq!(n.as_slice().unwrap(), &[0]);
    }

    #[test]
    fn negative_strides() {
        let a: ArrayD<i32> = Array::from_shape_vec(IxDyn(&[2, 4]), (0..8).collect()).unwrap();
        let mut v = a.view();
        v.invert_axis(Axis(1));
        let v = as4(v).unwrap();
        let g = trim_geom(v.shape(), &[1, 1, 2, 2]);
        let r = rg(v, &g, &ExtOp::<i32, true>::new(Missing::new(None), true));
        assert_eq!(r.as_slice().unwrap(), &[7, 5]);
    }
}
