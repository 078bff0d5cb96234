//! `pyramid_tile`'s fast path for the common pyramid: float mean or sum, every level halving both
//! last axes (2x2 windows, then 4x4, ...), a tile whose rows are contiguous and whose edges are
//! multiples of the deepest window.
//!
//! Same values as the partial-state path in `tile` (f64 sums, the same skip rules, each level
//! from the previous level's sums and counts, never from its finished values) with the states
//! held as struct-of-arrays rows: one pass over the native cells writes level 1 and its sums and
//! counts, and each deeper level reads only the states of the level above. The tile is cut into
//! bands of rows one deepest window tall, so a band's states stay in cache and the levels are
//! written in place (no assembly copy).
use std::mem::MaybeUninit;

use ndarray::{s, Array4, ArrayView4};
use rayon::prelude::*;

use crate::fast::{dispatched, finish, use_avx2, valid, FastFloat};
use crate::reduce::{split, Method};

/// Level 1 of one pair of native rows: finished values into `out`, f64 sums and counts into
/// `sum` and `cnt` (as wide as `out`).
#[inline(always)]
fn body_first<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    r0: &[T],
    r1: &[T],
    out: &mut [MaybeUninit<T>],
    sum: &mut [f64],
    cnt: &mut [u32],
    fill: T,
) {
    let n = out.len();
    let (r0, r1, sum, cnt) = (&r0[..2 * n], &r1[..2 * n], &mut sum[..n], &mut cnt[..n]);
    for ((((o, a), b), sm), cn) in out
        .iter_mut()
        .zip(r0.chunks_exact(2))
        .zip(r1.chunks_exact(2))
        .zip(sum.iter_mut())
        .zip(cnt.iter_mut())
    {
        let (v0, v1, v2, v3) = (
            valid(a[0], fill),
            valid(a[1], fill),
            valid(b[0], fill),
            valid(b[1], fill),
        );
        let z = |v: bool, x: T| if v { x.acc() } else { 0.0 };
        // Column sums first, then across: the order of the column kernel of the general path.
        let s = (z(v0, a[0]) + z(v2, b[0])) + (z(v1, a[1]) + z(v3, b[1]));
        let c = v0 as u32 + v1 as u32 + v2 as u32 + v3 as u32;
        *sm = s;
        *cn = c;
        *o = MaybeUninit::new(finish::<T, MEAN, SKIP>(s, c, 4, fill));
    }
}

/// A row of sums and counts.
type StateRow<'a> = (&'a [f64], &'a [u32]);
/// A row of sums and counts to write.
type StateRowMut<'a> = (&'a mut [f64], &'a mut [u32]);

/// The next level from two rows of states (`upper`, `lower`): finished values into `out`
/// (windows of `full` native cells), the merged states into `next`.
#[inline(always)]
fn body_merge<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    upper: StateRow<'_>,
    lower: StateRow<'_>,
    out: &mut [MaybeUninit<T>],
    next: StateRowMut<'_>,
    full: u32,
    fill: T,
) {
    let n = out.len();
    let (s0, c0, s1, c1) = (
        &upper.0[..2 * n],
        &upper.1[..2 * n],
        &lower.0[..2 * n],
        &lower.1[..2 * n],
    );
    let (sum, cnt) = (&mut next.0[..n], &mut next.1[..n]);
    for (j, o) in out.iter_mut().enumerate() {
        // Row-major, left to right: the merge order of the general path's state fold.
        let s = ((s0[2 * j] + s0[2 * j + 1]) + s1[2 * j]) + s1[2 * j + 1];
        let c = c0[2 * j] + c0[2 * j + 1] + c1[2 * j] + c1[2 * j + 1];
        sum[j] = s;
        cnt[j] = c;
        *o = MaybeUninit::new(finish::<T, MEAN, SKIP>(s, c, full, fill));
    }
}

dispatched!(run_first, avx2_first, body_first, [T: FastFloat] [MEAN: bool, SKIP: bool],
    (r0: &[T], r1: &[T], out: &mut [MaybeUninit<T>], sum: &mut [f64], cnt: &mut [u32], fill: T));
dispatched!(run_merge, avx2_merge, body_merge, [T: FastFloat] [MEAN: bool, SKIP: bool],
    (upper: StateRow<'_>, lower: StateRow<'_>, out: &mut [MaybeUninit<T>], next: StateRowMut<'_>,
     full: u32, fill: T));

/// Sums and counts of one band at every level but the deepest, reused from band to band.
#[derive(Default)]
struct States {
    sum: Vec<Vec<f64>>,
    cnt: Vec<Vec<u32>>,
}

/// Whether `strides` are those of the writer's pyramid: 2x2 on the last two axes, doubling.
fn halving(strides: &[[usize; 4]]) -> bool {
    strides.iter().enumerate().all(|(k, s)| {
        let f = 2usize << k;
        *s == [1, 1, f, f]
    })
}

/// Every level of `v` (at `strides`), or `None` when the fast path does not apply: not mean or
/// sum, strides that do not halve both last axes level by level, rows that are not contiguous,
/// or a tile edge that is not a multiple of the deepest window.
pub fn levels<T: FastFloat>(
    v: ArrayView4<'_, T>,
    strides: &[[usize; 4]],
    method: Method,
    fill: T,
    skipna: bool,
) -> Option<Vec<Array4<T>>> {
    let deepest = 2usize << strides.len().checked_sub(1)?;
    let sh = v.shape();
    let (rows, cols) = (sh[2], sh[3]);
    let fits = rows > 0 && cols > 0 && rows % deepest == 0 && cols % deepest == 0;
    if !fits || !halving(strides) || v.strides()[3] != 1 {
        return None;
    }
    Some(match (method, skipna) {
        (Method::Mean, true) => run::<T, true, true>(v, strides.len(), fill),
        (Method::Mean, false) => run::<T, true, false>(v, strides.len(), fill),
        (Method::Sum, true) => run::<T, false, true>(v, strides.len(), fill),
        (Method::Sum, false) => run::<T, false, false>(v, strides.len(), fill),
        _ => return None,
    })
}

/// The levels of `v` (`nlev` of them, the checks of `levels` passed), band by band.
fn run<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    v: ArrayView4<'_, T>,
    nlev: usize,
    fill: T,
) -> Vec<Array4<T>> {
    let sh = v.shape();
    let band = 2usize << (nlev - 1); // native rows per band: one deepest window
    let mut outs: Vec<Array4<MaybeUninit<T>>> = (1..=nlev)
        .map(|k| Array4::uninit([sh[0], sh[1], sh[2] >> k, sh[3] >> k]))
        .collect();
    // Band `i` of plane `p` writes rows of every level that are contiguous in that level's
    // C-ordered buffer: level k's chunk `p * bands + i` of `(band >> k) * (cols >> k)` cells.
    let bands = sh[2] / band;
    let mut chunks: Vec<_> = outs
        .iter_mut()
        .enumerate()
        .map(|(k, o)| {
            let len = (band >> (k + 1)) * (sh[3] >> (k + 1));
            o.as_slice_mut()
                .expect("fresh C-ordered array")
                .chunks_mut(len)
        })
        .collect();
    let tasks: Vec<(usize, Vec<&mut [MaybeUninit<T>]>)> = (0..sh[0] * sh[1] * bands)
        .map(|t| {
            (
                t,
                chunks
                    .iter_mut()
                    .map(|c| c.next().expect("one chunk per band"))
                    .collect(),
            )
        })
        .collect();
    let avx2 = use_avx2();
    let one = |st: &mut States, (t, mut out): (usize, Vec<&mut [MaybeUninit<T>]>)| {
        let (plane, i) = (t / bands, t % bands);
        let (p0, p1) = (plane / sh[1], plane % sh[1]);
        let rows = v.slice(s![p0, p1, i * band..(i + 1) * band, ..]);
        band_levels::<T, MEAN, SKIP>(rows, &mut out, st, fill, avx2);
    };
    if split(v.len()) {
        tasks.into_par_iter().for_each_init(States::default, one);
    } else {
        let mut st = States::default();
        tasks.into_iter().for_each(|task| one(&mut st, task));
    }
    // SAFETY: the tasks cover every chunk of every level, and `band_levels` writes every cell
    // of its chunks.
    outs.into_iter()
        .map(|o| unsafe { o.assume_init() })
        .collect()
}

/// Every level of one band of native rows (`rows`: one deepest window tall, contiguous rows)
/// into `out` (one chunk per level).
fn band_levels<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    rows: ndarray::ArrayView2<'_, T>,
    out: &mut [&mut [MaybeUninit<T>]],
    st: &mut States,
    fill: T,
    avx2: bool,
) {
    let (h, w) = (rows.shape()[0], rows.shape()[1]);
    let nlev = out.len();
    st.sum.resize_with(nlev, Vec::new);
    st.cnt.resize_with(nlev, Vec::new);
    for k in 0..nlev {
        let cells = (h >> (k + 1)) * (w >> (k + 1));
        st.sum[k].resize(cells, 0.0);
        st.cnt[k].resize(cells, 0);
    }
    let row = |r: usize| rows.row(r).to_slice().expect("contiguous row");
    let w1 = w / 2;
    for i in 0..h / 2 {
        let at = i * w1..(i + 1) * w1;
        let (sum, cnt) = (&mut st.sum[0][at.clone()], &mut st.cnt[0][at.clone()]);
        run_first::<T, MEAN, SKIP>(
            avx2,
            row(2 * i),
            row(2 * i + 1),
            &mut out[0][at],
            sum,
            cnt,
            fill,
        );
    }
    for k in 1..nlev {
        let (wp, wk, hk) = (w >> k, w >> (k + 1), h >> (k + 1));
        let full = 1u32 << (2 * (k + 1));
        let (above, below) = st.sum.split_at_mut(k);
        let (cabove, cbelow) = st.cnt.split_at_mut(k);
        let (ps, pc) = (&above[k - 1], &cabove[k - 1]);
        for i in 0..hk {
            let (r0, r1) = (
                (2 * i) * wp..(2 * i + 1) * wp,
                (2 * i + 1) * wp..(2 * i + 2) * wp,
            );
            let at = i * wk..(i + 1) * wk;
            run_merge::<T, MEAN, SKIP>(
                avx2,
                (&ps[r0.clone()], &pc[r0]),
                (&ps[r1.clone()], &pc[r1]),
                &mut out[k][at.clone()],
                (&mut below[0][at.clone()], &mut cbelow[0][at]),
                full,
                fill,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::any::{AnyArray, AnyView};
    use crate::api;
    use crate::dtype::FillValue;
    use ndarray::{Array3, ArrayD, Axis};

    /// Integer-valued floats (every f64 sum exact in any order) with NaN and -99 cells.
    fn tile(planes: usize, rows: usize, cols: usize) -> Array3<f32> {
        Array3::from_shape_fn((planes, rows, cols), |(p, i, j)| {
            if (i * 5 + j + p) % 7 == 0 {
                f32::NAN
            } else if (i + 3 * j) % 11 == 0 {
                -99.0
            } else {
                ((i * 7 + j * 3 + p) % 17) as f32 - 8.0
            }
        })
    }

    fn f32s(a: AnyArray) -> ArrayD<f32> {
        match a {
            AnyArray::F32(a) => a,
            _ => panic!("float32 expected"),
        }
    }

    fn same(a: &ArrayD<f32>, b: &ArrayD<f32>) -> bool {
        a.shape() == b.shape()
            && a.iter()
                .zip(b.iter())
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    fn strides(n: usize) -> Vec<[usize; 4]> {
        (1..=n).map(|k| [1, 1, 1 << k, 1 << k]).collect()
    }

    #[test]
    fn every_level_equals_reducing_the_native_cells() {
        let a = tile(2, 64, 96);
        let v4 = a.view().insert_axis(Axis(0));
        for method in [Method::Mean, Method::Sum] {
            let name = if method == Method::Mean {
                "mean"
            } else {
                "sum"
            };
            for skipna in [true, false] {
                for fill in [None, Some(-99.0f32)] {
                    let levels = levels(v4, &strides(5), method, fill.unwrap_or(f32::NAN), skipna)
                        .expect("the fast path applies");
                    for (k, got) in levels.into_iter().enumerate() {
                        let f = 2i64 << k;
                        let want = f32s(
                            api::block_reduce(
                                AnyView::F32(a.view().into_dyn()),
                                &[1, f, f],
                                name,
                                fill.map(|x| FillValue::Float(x as f64)),
                                skipna,
                            )
                            .unwrap(),
                        );
                        let got = got.index_axis_move(Axis(0), 0).into_dyn();
                        assert!(
                            same(&got, &want),
                            "{name} skipna={skipna} fill={fill:?} level {}",
                            k + 1
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn falls_back_where_it_does_not_apply() {
        let a = tile(1, 64, 96);
        let v = a.view().insert_axis(Axis(0));
        let nan = f32::NAN;
        assert!(
            levels(v, &strides(5), Method::Max, nan, true).is_none(),
            "not mean or sum"
        );
        let odd = a.slice(s![.., ..60, ..]).insert_axis(Axis(0));
        assert!(
            levels(odd, &strides(3), Method::Mean, nan, true).is_none(),
            "60 rows, 8x8"
        );
        let uneven = vec![[1, 1, 2, 2], [1, 1, 8, 8]];
        assert!(
            levels(v, &uneven, Method::Mean, nan, true).is_none(),
            "not halving"
        );
        let strided = a.slice(s![.., .., ..;2]).insert_axis(Axis(0));
        assert!(
            levels(strided, &strides(2), Method::Mean, nan, true).is_none(),
            "strided rows"
        );
        assert!(
            levels(v, &[], Method::Mean, nan, true).is_none(),
            "no levels"
        );
        assert!(levels(v, &strides(5), Method::Mean, nan, true).is_some());
    }
}
