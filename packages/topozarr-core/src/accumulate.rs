//! The accumulating form used by the single-pass pyramid writer.
//!
//! * [`pyramid_tile`] reduces one native tile to every coarser level at once: level 1 from the
//!   native cells, each further level from the previous level's *partial states* (sum + count,
//!   running extreme + flags), never from finished values, so every level equals reducing the
//!   native cells directly (integer means round once, from the exact native sum).
//! * [`new_accumulator`] keeps those partial states for one whole level across many tiles, for the
//!   deep levels whose windows span several tiles.
use crate::columns::{ColOp, Columns};
use crate::dtype::{fill_for, Elem, Missing};
use crate::error::{KernelError, Result};
use crate::kernel::{squeeze, AnyArray, AnyView, Args, IntoAny, Kernel};
use crate::reduce::{
    as4, check_stride, drive, nearest, out_shape, strict_geom, stride_cells, Ax, ExtOp, Fold,
    Generic, Geom, Method, NearState, NearestOp, Op, StateFold, SumOp, PAR_MIN_CELLS,
};
use ndarray::{s, Array4, ArrayView4, ArrayViewD, Zip};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Checks `pyramid_tile`'s cumulative strides: each positive and elementwise dividing the next.
fn check_strides(strides: &[Vec<i64>], ndim: usize) -> Result<Vec<[usize; 4]>> {
    let mut out: Vec<[usize; 4]> = Vec::with_capacity(strides.len());
    for (k, s) in strides.iter().enumerate() {
        let s = check_stride(s, ndim, "stride")?;
        if let Some(prev) = out.last() {
            if prev.iter().zip(&s).any(|(p, c)| c % p != 0) {
                return Err(KernelError::BadStrides(format!(
                    "strides[{k}] = {:?} is not a multiple of strides[{}] = {:?} on every axis; \
                     cumulative strides must each divide the next",
                    &s[4 - ndim..],
                    k - 1,
                    &prev[4 - ndim..]
                )));
            }
        }
        out.push(s);
    }
    Ok(out)
}

fn ident<S: Copy>(s: &S) -> S {
    *s
}

/// Partial states of coarser windows from finer partial states (AoS merge: these levels hold a
/// quarter or less of the native cells).
fn states_of<X: Copy + Sync, F: Fold<X>>(a: ArrayView4<'_, X>, g: &Geom, f: &F) -> Array4<F::S> {
    drive(
        a,
        g,
        &Generic {
            fold: f,
            emit: ident::<F::S>,
        },
    )
}

/// Partial states of windows of native cells: the vectorised column kernel for sum/mean/max/min,
/// the generic one for nearest.
pub trait NativeStates<T: Elem>: Op<T> {
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<Self::S>;
}

impl<T: Elem, const MEAN: bool> NativeStates<T> for SumOp<T, MEAN>
where
    SumOp<T, MEAN>: ColOp<T>,
{
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<Self::S> {
        drive(a, g, &Columns::<Self, true>::new(self))
    }
}

impl<T: Elem, const MAX: bool> NativeStates<T> for ExtOp<T, MAX> {
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<Self::S> {
        drive(a, g, &Columns::<Self, true>::new(self))
    }
}

impl<T: Elem> NativeStates<T> for NearestOp<T> {
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<NearState<T>> {
        states_of(a, g, self)
    }
}

/// Every level of one tile from partial states (all methods but nearest).
/// Outer-axis cells (rows of the last axis) per block of `pyramid_tile`'s first phase: small
/// enough that a block's partial states stay in cache, large enough to amortise the per-block
/// work.
const BLOCK_ROWS: usize = 32;
/// Native cells per block (blocks are made taller than one window when rows are short).
const BLOCK_CELLS: usize = 1 << 16;

/// Finished levels and the partial states of the last one.
type Levels<T, K> = (Vec<Array4<<K as Op<T>>::Out>>, Array4<<K as Fold<T>>::S>);

/// Coarser levels from the partial states `prev` of stride `prev_stride`: each level from the
/// previous level's states. Returns the finished levels and the last level's states.
fn merge_levels<T: Kernel, K: NativeStates<T>>(
    mut prev: Array4<K::S>,
    mut prev_stride: [usize; 4],
    strides: &[[usize; 4]],
    op: &K,
) -> Result<Levels<T, K>> {
    let mut out = Vec::with_capacity(strides.len());
    for s in strides {
        let op = &op.with_full(stride_cells(s)?);
        let ratio: [usize; 4] = std::array::from_fn(|i| s[i] / prev_stride[i]);
        let merge = StateFold(op, std::marker::PhantomData);
        let states = states_of(prev.view(), &strict_geom(prev.shape(), &ratio), &merge);
        out.push(states.map(|st| op.finish(st)));
        prev = states;
        prev_stride = *s;
    }
    Ok((out, prev))
}

/// All levels of a (small) block of native cells: the first from the native cells, the others
/// from partial states. Returns the finished levels and the last level's states.
fn block_levels<T: Kernel, K: NativeStates<T>>(
    v: ArrayView4<'_, T>,
    strides: &[[usize; 4]],
    op: &K,
) -> Result<Levels<T, K>> {
    let first = op.with_full(stride_cells(&strides[0])?);
    let states = first.native_states(v, &strict_geom(v.shape(), &strides[0]));
    let level = states.map(|st| first.finish(st));
    let (mut rest, last) = merge_levels(states, strides[0], &strides[1..], op)?;
    rest.insert(0, level);
    Ok((rest, last))
}

/// Copies `src` into `dst` at `start` (4-D).
fn put<X: Copy>(dst: &mut Array4<MaybeUninit<X>>, src: &Array4<X>, start: [usize; 4]) {
    let e = src.shape();
    dst.slice_mut(s![
        start[0]..start[0] + e[0],
        start[1]..start[1] + e[1],
        start[2]..start[2] + e[2],
        start[3]..start[3] + e[3]
    ])
    .zip_mut_with(src, |d, s| *d = MaybeUninit::new(*s));
}

/// Every level of one tile, exact, in one pass over the native cells.
///
/// Phase 1 cuts the tile into blocks of whole windows of the deepest level whose window spans
/// at most `BLOCK_ROWS` rows (the full last axis each) and builds levels up to that one block by
/// block, so partial states never leave the cache; blocks run in parallel. Phase 2 builds the
/// deeper levels from the assembled states of that level, which are at least 4x smaller than the
/// tile.
fn levels_from_states<T: Kernel, K: NativeStates<T>>(
    v: ArrayView4<'_, T>,
    strides: &[[usize; 4]],
    op: K,
    ndim: usize,
) -> Result<Vec<AnyArray>> {
    if strides.is_empty() {
        return Ok(Vec::new());
    }
    let rows = |s: &[usize; 4]| s[0] * s[1] * s[2];
    let m = strides
        .iter()
        .rposition(|s| rows(s) <= BLOCK_ROWS)
        .unwrap_or(0);
    let n = v.shape().to_vec();
    // Blocks hold several windows of level m along axis 2 when rows are short, so per-block
    // overhead stays small (any multiple of the level-m window nests all shallower windows).
    let mut bs = strides[m];
    let block_cells = rows(&bs) * n[3].max(1);
    bs[2] *= (BLOCK_CELLS / block_cells).clamp(1, n[2].div_ceil(bs[2]).max(1));
    let nb: [usize; 3] = std::array::from_fn(|i| n[i].div_ceil(bs[i]));
    let blocks: Vec<[usize; 3]> = (0..nb[0])
        .flat_map(|b0| (0..nb[1]).flat_map(move |b1| (0..nb[2]).map(move |b2| [b0, b1, b2])))
        .collect();
    let one = |b: &[usize; 3]| {
        let vb = v.slice(s![
            b[0] * bs[0]..((b[0] + 1) * bs[0]).min(n[0]),
            b[1] * bs[1]..((b[1] + 1) * bs[1]).min(n[1]),
            b[2] * bs[2]..((b[2] + 1) * bs[2]).min(n[2]),
            ..
        ]);
        block_levels(vb, &strides[..=m], &op)
    };
    let parts: Vec<Levels<T, K>> = if v.len() < PAR_MIN_CELLS || rayon::current_num_threads() == 1 {
        blocks.iter().map(one).collect::<Result<_>>()?
    } else {
        blocks.par_iter().map(one).collect::<Result<_>>()?
    };
    // Assemble the block results (a copy of the outputs only, a quarter of the input or less).
    // Uninitialised: the blocks tile every level up to m exactly (block edges are multiples of
    // every stride up to m), so each cell is written once below.
    let mut levels: Vec<Array4<MaybeUninit<K::Out>>> = strides[..=m]
        .iter()
        .map(|s| Array4::uninit(out_shape(&strict_geom(&n, s))))
        .collect();
    // States of level m are only kept for the levels below it.
    let deeper = m + 1 < strides.len();
    let last_shape = if deeper {
        out_shape(&strict_geom(&n, &strides[m]))
    } else {
        [0; 4]
    };
    let mut last: Array4<MaybeUninit<K::S>> = Array4::uninit(last_shape);
    for (b, (lv, st)) in blocks.iter().zip(&parts) {
        for (k, (dst, src)) in levels.iter_mut().zip(lv).enumerate() {
            let sk = strides[k];
            put(
                dst,
                src,
                std::array::from_fn(|i| if i < 3 { b[i] * bs[i] / sk[i] } else { 0 }),
            );
        }
        if deeper {
            let sm = strides[m];
            put(
                &mut last,
                st,
                std::array::from_fn(|i| if i < 3 { b[i] * bs[i] / sm[i] } else { 0 }),
            );
        }
    }
    drop(parts);
    // SAFETY: every cell of every level up to m, and of `last`, was written above.
    let mut levels: Vec<Array4<K::Out>> = levels
        .into_iter()
        .map(|l| unsafe { l.assume_init() })
        .collect();
    if deeper {
        // SAFETY: as above.
        let last = unsafe { last.assume_init() };
        let (more, _) = merge_levels(last, strides[m], &strides[m + 1..], &op)?;
        levels.extend(more);
    }
    Ok(levels
        .into_iter()
        .map(|l| K::Out::into_any(squeeze(l, ndim)))
        .collect())
}

fn pyramid_tile_t<T: Kernel>(
    a: ArrayViewD<'_, T>,
    strides: &[Vec<i64>],
    args: &Args,
) -> Result<Vec<AnyArray>> {
    let nd = a.ndim();
    let v = as4(a)?;
    let strides = check_strides(strides, nd)?;
    let miss = Missing::new(fill_for::<T>(args.fill)?);
    let skipna = args.skipna;
    Ok(match args.method {
        Method::Mean => levels_from_states(v, &strides, SumOp::<T, true>::new(miss, skipna), nd)?,
        Method::Sum => levels_from_states(v, &strides, SumOp::<T, false>::new(miss, skipna), nd)?,
        Method::Max => levels_from_states(v, &strides, ExtOp::<T, true>::new(miss, skipna), nd)?,
        Method::Min => levels_from_states(v, &strides, ExtOp::<T, false>::new(miss, skipna), nd)?,
        // The top-left cells of every level are a strided view of the tile: nothing to carry.
        Method::Nearest => strides
            .iter()
            .map(|s| T::into_any(squeeze(nearest(v, &strict_geom(v.shape(), s)), nd)))
            .collect(),
        Method::Mode => crate::mode::pyramid_tile_mode(v, &strides, miss, skipna, nd),
    })
}

/// `pyramid_tile`: `block_reduce` of `a` for every cumulative stride, strict trim, in one pass.
pub fn pyramid_tile(
    a: AnyView<'_>,
    strides: &[Vec<i64>],
    method: &str,
    fill: Option<crate::dtype::FillValue>,
    skipna: bool,
) -> Result<Vec<AnyArray>> {
    let args = Args::parse(method, fill, skipna)?;
    crate::with_view!(a, a, pyramid_tile_t(a, strides, &args))
}

/// Partial states of one whole level, fed tile by tile. Not thread-safe by itself: callers
/// serialise `fold` (Python's borrow checking on the wrapping object does).
pub trait LevelAccumulator: Send + Sync {
    /// Folds a native tile whose first cell lies `phase` native cells into level cell `offset`.
    fn fold(
        &mut self,
        a: AnyView<'_>,
        offset: &[i64],
        stride: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<()>;
    /// Finished values of level cells `[start, stop)`.
    fn result(&self, start: Option<&[i64]>, stop: Option<&[i64]>) -> Result<AnyArray>;
    /// Bytes held by the partial states.
    fn nbytes(&self) -> usize;
    fn shape(&self) -> Vec<usize>;
    fn dtype(&self) -> &'static str;
    fn method(&self) -> Method;
}

struct LevelAcc<T: Kernel, K: NativeStates<T>> {
    op: K,
    /// The stride of the first fold; every later fold must use the same one.
    stride: Option<[usize; 4]>,
    method: Method,
    ndim: usize,
    states: Array4<K::S>,
    _t: std::marker::PhantomData<T>,
}

/// A validated tile: its 4-D view, where it lands (`offset`, `phase`) and its window geometry.
pub(crate) type FoldTile<'a, T> = (ArrayView4<'a, T>, [usize; 4], [usize; 4], Geom);

/// Checks one tile against its accumulator and derives the tile's window geometry.
///
/// Shared by every `LevelAccumulator::fold`: the tile's dtype and dimensionality must match,
/// `offset`/`stride`/`phase` are validated (and returned as 4-D indices), and `first_stride` pins the stride of the first
/// fold so that later folds cannot mix window sizes.
pub(crate) fn fold_geometry<'a, T: Kernel>(
    a: AnyView<'a>,
    ndim: usize,
    offset: &[i64],
    stride: &[i64],
    phase: Option<&[i64]>,
    first_stride: &mut Option<[usize; 4]>,
) -> Result<FoldTile<'a, T>> {
    let got = crate::with_view!(&a, x, elem_name(x));
    let a = T::view(a).ok_or_else(|| {
        KernelError::DtypeMismatch(format!(
            "tile dtype {got} does not match the accumulator's dtype {}",
            T::NAME
        ))
    })?;
    let nd = ndim;
    if a.ndim() != nd {
        return Err(KernelError::Invalid(format!(
            "tile has {} dimensions but the accumulator has {nd}",
            a.ndim()
        )));
    }
    let v = as4(a)?;
    let stride = check_stride(stride, nd, "stride")?;
    let offset = index_list(offset, nd, "offset")?;
    let phase = match phase {
        Some(p) => index_list(p, nd, "phase")?,
        None => [0; 4],
    };
    if let Some(i) = (0..4).find(|&i| phase[i] >= stride[i]) {
        return Err(KernelError::Invalid(format!(
            "phase {:?} must be smaller than stride {:?} on every axis (axis {})",
            &phase[4 - nd..],
            &stride[4 - nd..],
            i - (4 - nd)
        )));
    }
    match *first_stride {
        None => {
            stride_cells(&stride)?;
            *first_stride = Some(stride);
        }
        Some(s) if s != stride => {
            return Err(KernelError::Invalid(format!(
                "stride {:?} differs from the stride {:?} of earlier folds",
                &stride[4 - nd..],
                &s[4 - nd..]
            )))
        }
        Some(_) => {}
    }
    let g: Geom = std::array::from_fn(|i| Ax::touched(v.shape()[i], stride[i], phase[i]));
    Ok((v, offset, phase, g))
}

pub(crate) fn index_list(v: &[i64], ndim: usize, what: &'static str) -> Result<[usize; 4]> {
    if v.len() != ndim {
        return Err(KernelError::LengthMismatch {
            what,
            got: v.len(),
            expected: ndim,
        });
    }
    let mut out = [0usize; 4];
    for (o, &x) in out[4 - ndim..].iter_mut().zip(v) {
        *o = usize::try_from(x).map_err(|_| {
            KernelError::Invalid(format!(
                "{what} {v:?} has a negative entry; entries must be >= 0"
            ))
        })?;
    }
    Ok(out)
}

impl<T: Kernel, K: NativeStates<T>> LevelAccumulator for LevelAcc<T, K> {
    fn fold(
        &mut self,
        a: AnyView<'_>,
        offset: &[i64],
        stride: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<()> {
        let (v, offset, phase, g) =
            fold_geometry::<T>(a, self.ndim, offset, stride, phase, &mut self.stride)?;
        let mut tile = self.op.native_states(v, &g);
        if self.method == Method::Nearest {
            // A window that starts before the tile has its top-left cell in another tile: drop
            // what this tile saw of it, so only the true top-left cell is ever kept.
            let empty = self.op.empty();
            let tshape = tile.shape().to_vec();
            for i in (0..4).filter(|&i| phase[i] > 0 && tshape[i] > 0) {
                tile.index_axis_mut(ndarray::Axis(i), 0).fill(empty);
            }
        }
        let shape = self.states.shape().to_vec();
        let n: [usize; 4] =
            std::array::from_fn(|i| tile.shape()[i].min(shape[i].saturating_sub(offset[i])));
        if n.contains(&0) {
            return Ok(());
        }
        let mut dst = self.states.slice_mut(s![
            offset[0]..offset[0] + n[0],
            offset[1]..offset[1] + n[1],
            offset[2]..offset[2] + n[2],
            offset[3]..offset[3] + n[3]
        ]);
        let src = tile.slice(s![..n[0], ..n[1], ..n[2], ..n[3]]);
        let op = &self.op;
        Zip::from(&mut dst)
            .and(&src)
            .for_each(|d, s| op.merge(d, s));
        Ok(())
    }

    fn result(&self, start: Option<&[i64]>, stop: Option<&[i64]>) -> Result<AnyArray> {
        let nd = self.ndim;
        let shape = self.states.shape();
        let start = match start {
            Some(s) => index_list(s, nd, "start")?,
            None => [0; 4],
        };
        let stop = match stop {
            Some(s) => {
                // The padding axes have length 1: the region spans all of them.
                let mut s = index_list(s, nd, "stop")?;
                s[..4 - nd].fill(1);
                s
            }
            None => std::array::from_fn(|i| shape[i]),
        };
        if (0..4).any(|i| start[i] > stop[i] || stop[i] > shape[i]) {
            return Err(KernelError::Invalid(format!(
                "region start={:?} stop={:?} is not inside the level shape {:?}",
                &start[4 - nd..],
                &stop[4 - nd..],
                &shape[4 - nd..]
            )));
        }
        let region = self.states.slice(s![
            start[0]..stop[0],
            start[1]..stop[1],
            start[2]..stop[2],
            start[3]..stop[3]
        ]);
        // Cells of windows never folded count as missing (the count stays below a whole window).
        let full = match self.stride {
            Some(s) => stride_cells(&s)?,
            None => 1,
        };
        let op = self.op.with_full(full);
        let out = Array4::from_shape_vec(
            region.raw_dim(),
            region.iter().map(|st| op.finish(st)).collect(),
        )
        .expect("region size");
        Ok(K::Out::into_any(squeeze(out, nd)))
    }

    fn nbytes(&self) -> usize {
        self.states.len() * std::mem::size_of::<K::S>()
    }

    fn shape(&self) -> Vec<usize> {
        self.states.shape()[4 - self.ndim..].to_vec()
    }

    fn dtype(&self) -> &'static str {
        T::NAME
    }

    fn method(&self) -> Method {
        self.method
    }
}

pub(crate) fn elem_name<T: crate::dtype::Elem>(_: &ArrayViewD<'_, T>) -> &'static str {
    T::NAME
}

fn make<T: Kernel, K: NativeStates<T> + 'static>(
    op: K,
    method: Method,
    shape: &[usize],
) -> Result<Box<dyn LevelAccumulator>> {
    let ndim = shape.len();
    let shape4: [usize; 4] = std::array::from_fn(|i| {
        if i < 4 - ndim {
            1
        } else {
            shape[i - (4 - ndim)]
        }
    });
    let cells = shape4.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    let bytes = cells.and_then(|c| c.checked_mul(std::mem::size_of::<K::S>()));
    let (Some(cells), Some(bytes)) = (cells, bytes) else {
        return Err(KernelError::OutOfMemory(usize::MAX));
    };
    // Refuse (MemoryError) rather than abort when the level does not fit in memory.
    let mut v: Vec<K::S> = Vec::new();
    v.try_reserve_exact(cells)
        .map_err(|_| KernelError::OutOfMemory(bytes))?;
    v.resize(cells, op.empty());
    let states = Array4::from_shape_vec(shape4, v).expect("cells");
    Ok(Box::new(LevelAcc::<T, K> {
        stride: None,
        op,
        method,
        ndim,
        states,
        _t: std::marker::PhantomData,
    }))
}

fn new_t<T: Kernel>(shape: &[usize], args: &Args) -> Result<Box<dyn LevelAccumulator>> {
    let miss = Missing::new(fill_for::<T>(args.fill)?);
    let skipna = args.skipna;
    match args.method {
        Method::Mean => make::<T, _>(SumOp::<T, true>::new(miss, skipna), args.method, shape),
        Method::Sum => make::<T, _>(SumOp::<T, false>::new(miss, skipna), args.method, shape),
        Method::Max => make::<T, _>(ExtOp::<T, true>::new(miss, skipna), args.method, shape),
        Method::Min => make::<T, _>(ExtOp::<T, false>::new(miss, skipna), args.method, shape),
        Method::Nearest => make::<T, _>(NearestOp { miss }, args.method, shape),
        Method::Mode => crate::mode::new_mode_accumulator::<T>(shape, args.fill, skipna),
    }
}

/// A new accumulator for one level of `shape` (level cells) over source dtype `dtype`.
pub fn new_accumulator(
    shape: &[i64],
    dtype: &str,
    method: &str,
    fill: Option<crate::dtype::FillValue>,
    skipna: bool,
) -> Result<Box<dyn LevelAccumulator>> {
    let args = Args::parse(method, fill, skipna)?;
    let nd = shape.len();
    if nd == 0 || nd > crate::MAX_NDIM {
        return Err(KernelError::BadNdim(nd));
    }
    let shape = shape
        .iter()
        .map(|&n| usize::try_from(n))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| KernelError::Invalid(format!("shape {shape:?} has a negative entry")))?;
    match dtype {
        "uint8" => new_t::<u8>(&shape, &args),
        "int8" => new_t::<i8>(&shape, &args),
        "uint16" => new_t::<u16>(&shape, &args),
        "int16" => new_t::<i16>(&shape, &args),
        "uint32" => new_t::<u32>(&shape, &args),
        "int32" => new_t::<i32>(&shape, &args),
        "uint64" => new_t::<u64>(&shape, &args),
        "int64" => new_t::<i64>(&shape, &args),
        "float32" => new_t::<f32>(&shape, &args),
        "float64" => new_t::<f64>(&shape, &args),
        other => Err(KernelError::UnsupportedDtype(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::block_reduce;
    use ndarray::{Array, ArrayD, IxDyn};

    fn raster() -> ArrayD<i32> {
        Array::from_shape_fn(IxDyn(&[13, 17]), |ix| {
            ((ix[0] * 31 + ix[1] * 7) % 23) as i32 - 5
        })
    }

    #[test]
    fn pyramid_levels_equal_direct_reduction() {
        let a = raster();
        for m in crate::reduce::METHODS {
            let levels = pyramid_tile(
                a.view().into(),
                &[vec![1, 2], vec![2, 4], vec![4, 8]],
                m,
                Some(crate::dtype::FillValue::Int(0)),
                true,
            )
            .unwrap();
            for (lvl, s) in levels.iter().zip([[1usize, 2], [2, 4], [4, 8]]) {
                let (h, w) = (13 / s[0] * s[0], 17 / s[1] * s[1]);
                let cut = a.slice(s![..h, ..w]).into_dyn();
                let want = block_reduce(
                    cut.into(),
                    &[s[0] as i64, s[1] as i64],
                    m,
                    Some(crate::dtype::FillValue::Int(0)),
                    true,
                )
                .unwrap();
                assert_eq!(lvl, &want, "{m} {s:?}");
            }
        }
    }

    #[test]
    fn strides_must_nest() {
        let a = raster();
        let e = pyramid_tile(
            a.view().into(),
            &[vec![2, 2], vec![3, 4]],
            "mean",
            None,
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("strides[1]"), "{e}");
    }

    #[test]
    fn accumulator_in_uneven_tiles() {
        let a = raster();
        for m in crate::reduce::METHODS {
            let mut acc = new_accumulator(
                &[3, 4],
                "int32",
                m,
                Some(crate::dtype::FillValue::Int(3)),
                true,
            )
            .unwrap();
            // Row tiles of 3 rows and column tiles of 5 columns against a 4x4 window.
            for r0 in (0..13).step_by(3) {
                for c0 in (0..17).step_by(5) {
                    let t = a
                        .slice(s![r0..(r0 + 3).min(13), c0..(c0 + 5).min(17)])
                        .into_dyn();
                    let off = [(r0 / 4) as i64, (c0 / 4) as i64];
                    let ph = [(r0 % 4) as i64, (c0 % 4) as i64];
                    acc.fold(t.into(), &off, &[4, 4], Some(&ph)).unwrap();
                }
            }
            let cut = a.slice(s![..12, ..16]).into_dyn();
            let want = block_reduce(
                cut.into(),
                &[4, 4],
                m,
                Some(crate::dtype::FillValue::Int(3)),
                true,
            )
            .unwrap();
            assert_eq!(acc.result(None, None).unwrap(), want, "{m}");
        }
    }
}
