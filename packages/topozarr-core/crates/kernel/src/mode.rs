//! Majority (`mode`) resampling for categorical rasters: the most frequent valid value of each
//! window of native cells. Missing cells (NaN, `fill_value`) are skipped; ties go to the
//! smallest value; a window without a valid value gives the fill value (NaN for floats without
//! one, 0 for integers without one); with `skipna=False` any missing cell makes the window
//! missing.
//!
//! Mode is not decomposable (the mode of modes is not the mode), so:
//! * `block_reduce` / `pyramid_tile` reduce every level from the native cells of the tile;
//! * the [`crate::mode_acc::ModeAcc`] accumulator keeps an exact sparse histogram (sorted `(value, count)` pairs)
//!   per level cell, merged tile by tile. Its memory is the number of distinct valid values per
//!   level cell, which is small for categorical data (see the README for measured figures).
use crate::any::AnyArray;
use crate::dtype::{Elem, Missing};
use crate::error::{KernelError, Result};
use crate::kernel::{squeeze, Kernel};
use crate::mode_small::{
    key, mode_2x2, mode_large_simd, mode_small, mode_square_simd, LargeScratch, SMALL,
};
use crate::reduce::{drive, Ax, Geom, RowKernel};
use ndarray::{Array4, ArrayView1, ArrayView4};
use std::cmp::Ordering;
use std::mem::MaybeUninit;

#[inline(always)]
fn cmp<T: Elem>(a: &T, b: &T) -> Ordering {
    // Valid values are never NaN, so the order is total on them.
    a.partial_cmp(b).unwrap_or(Ordering::Equal)
}

/// The most frequent value of `v` (valid values only, not empty), ties to the smallest.
/// Reorders `v`.
pub fn mode_of<T: Elem>(v: &mut [T]) -> T {
    let n = v.len();
    debug_assert!(n > 0);
    if n <= 8 {
        // Small windows (2x2 and partial edges): counting beats sorting.
        let mut best = v[0];
        let mut bc = 0usize;
        for &x in v.iter() {
            let c = v.iter().filter(|&&y| y == x).count();
            if c > bc || (c == bc && x < best) {
                best = x;
                bc = c;
            }
        }
        return best;
    }
    v.sort_unstable_by(cmp);
    let (mut best, mut bc) = (v[0], 0usize);
    let mut i = 0;
    while i < n {
        let x = v[i];
        let mut j = i + 1;
        while j < n && v[j] == x {
            j += 1;
        }
        // Ascending runs: only a strictly longer run replaces, so ties keep the smallest value.
        if j - i > bc {
            best = x;
            bc = j - i;
        }
        i = j;
    }
    best
}

/// Reserves room for `extra` more elements of `v`, or reports the allocation that failed as
/// `OutOfMemory` (a `MemoryError` in Python) instead of aborting the process: the histograms
/// grow with the data, so a high-cardinality source can ask for more than the machine has.
pub fn try_grow<E>(v: &mut Vec<E>, extra: usize) -> Result<()> {
    v.try_reserve(extra).map_err(|_| {
        let n = v.len().saturating_add(extra);
        KernelError::OutOfMemory(n.saturating_mul(std::mem::size_of::<E>()))
    })
}

/// Sorted `(value, count)` runs of `v` (valid values), appended to `out`. Reorders `v`.
pub fn runs_of<T: Elem>(v: &mut [T], out: &mut Vec<(T, u32)>) -> Result<()> {
    v.sort_unstable_by(cmp);
    for &x in v.iter() {
        match out.last_mut() {
            Some((y, c)) if *y == x => *c += 1,
            _ => {
                if out.len() == out.capacity() {
                    try_grow(out, 1)?;
                }
                out.push((x, 1))
            }
        }
    }
    Ok(())
}

/// Merges the sorted runs `o` into the sorted runs `h`.
pub fn merge_runs<T: Elem>(h: &mut Vec<(T, u32)>, o: &[(T, u32)]) -> Result<()> {
    if o.is_empty() {
        return Ok(());
    }
    if h.is_empty() {
        try_grow(h, o.len())?;
        h.extend_from_slice(o);
        return Ok(());
    }
    let mut out = Vec::new();
    try_grow(&mut out, h.len() + o.len())?;
    let (mut i, mut j) = (0, 0);
    while i < h.len() && j < o.len() {
        match cmp(&h[i].0, &o[j].0) {
            Ordering::Less => {
                out.push(h[i]);
                i += 1;
            }
            Ordering::Greater => {
                out.push(o[j]);
                j += 1;
            }
            Ordering::Equal => {
                out.push((h[i].0, h[i].1 + o[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&h[i..]);
    out.extend_from_slice(&o[j..]);
    *h = out;
    Ok(())
}

/// The value with the largest count in sorted runs (ties to the smallest), if any.
pub fn mode_of_runs<T: Elem>(h: &[(T, u32)]) -> Option<T> {
    let mut best: Option<(T, u32)> = None;
    for &(x, c) in h {
        if best.is_none_or(|(_, bc)| c > bc) {
            best = Some((x, c));
        }
    }
    best.map(|(x, _)| x)
}

/// The row kernel of `mode` over native cells.
pub struct ModeRow<T> {
    pub miss: Missing<T>,
    pub skipna: bool,
}

impl<T: Elem> ModeRow<T> {
    #[inline(always)]
    fn finish(&self, buf: &mut [T], missing: bool) -> T {
        if buf.is_empty() || (missing && !self.skipna) {
            self.miss.fill()
        } else {
            mode_of(buf)
        }
    }
}

/// Integers of one or two bytes are counted in a direct-indexed table (`2^bits` counters).
#[inline(always)]
fn counted<T: Elem>() -> bool {
    !T::IS_FLOAT && std::mem::size_of::<T>() <= 2
}

/// Per-thread scratch of the mode row kernel.
#[derive(Default)]
pub struct ModeScratch<T> {
    buf: Vec<T>,
    counts: Vec<u32>,
    rows: Vec<Vec<T>>,
    large: LargeScratch,
    todo: Vec<usize>,
}

impl<T: Elem> ModeRow<T> {
    /// The SIMD and small-window paths of [`RowKernel::row`]; true when they finished the row,
    /// else `sc.todo` lists the windows left for the counting table (or sort).
    fn whole_windows(
        &self,
        sc: &mut ModeScratch<T>,
        rows: &[ArrayView1<'_, T>],
        ax: &Ax,
        out: &mut [MaybeUninit<T>],
    ) -> bool {
        // Whole windows over contiguous rows: square ones of small integers with AVX2, the
        // rest of up to SMALL cells by pairwise counting, vectorised by the compiler.
        // Larger square ones with AVX2 through a bound, leaving the windows it cannot decide.
        // The windows left go to the counting table (or sort) below.
        let miss = self.miss;
        let mut done = 0;
        sc.todo.clear();
        let mut large = false;
        if ax.p == 0 && out.len() * ax.s <= ax.n {
            let sl: Vec<&[T]> = rows.iter().filter_map(|r| r.as_slice()).collect();
            if sl.len() == rows.len() {
                if mode_large_simd(&sl, ax.s, out, miss, self.skipna, &mut sc.large) {
                    large = true;
                    sc.todo.extend_from_slice(&sc.large.pending);
                } else {
                    done = mode_square_simd(&sl, ax.s, out, miss, self.skipna);
                }
                if rows.len() * ax.s <= SMALL {
                    let rest: Vec<&[T]> = sl.iter().map(|r| &r[done * ax.s..]).collect();
                    mode_small(&rest, ax.s, &mut out[done..], miss, self.skipna);
                    return true;
                }
            }
        }
        if !large {
            sc.todo.extend(done..out.len());
        }
        false
    }
}

impl<T: Elem> RowKernel<T> for ModeRow<T> {
    type O = T;
    type Scratch = ModeScratch<T>;
    fn row(
        &self,
        sc: &mut ModeScratch<T>,
        rows: &[ArrayView1<'_, T>],
        ax: &Ax,
        out: &mut [MaybeUninit<T>],
    ) {
        let miss = self.miss;
        // 2x2 windows over contiguous rows: the common pyramid step, without a buffer.
        if rows.len() == 2 && ax.s == 2 && ax.p == 0 && out.len() * 2 <= ax.n {
            if let (Some(r0), Some(r1)) = (rows[0].as_slice(), rows[1].as_slice()) {
                mode_2x2(r0, r1, out, miss, self.skipna);
                return;
            }
        }
        if self.whole_windows(sc, rows, ax, out) {
            return;
        }
        // Contiguous row slices (strided rows are copied once).
        let ModeScratch {
            buf,
            counts,
            rows: owned,
            todo,
            ..
        } = sc;
        let strided = rows.iter().any(|r| r.as_slice().is_none());
        if strided {
            owned.resize_with(rows.len(), Vec::new);
            for (o, r) in owned.iter_mut().zip(rows) {
                o.clear();
                o.extend(r.iter().copied());
            }
        }
        let slice = |i: usize| -> &[T] {
            if strided {
                &owned[i]
            } else {
                rows[i].as_slice().expect("contiguous")
            }
        };
        let fill = miss.fill();
        if counted::<T>() {
            counts.resize(1 << (8 * std::mem::size_of::<T>()), 0);
            for &j in todo.iter() {
                let o = &mut out[j];
                let (lo, hi) = (ax.lo(j), ax.hi(j));
                let (mut best, mut bc, mut missing) = (fill, 0u32, false);
                for i in 0..rows.len() {
                    for &x in &slice(i)[lo..hi] {
                        if miss.is(x) {
                            missing = true;
                            continue;
                        }
                        let k = key(x);
                        counts[k] += 1;
                        let c = counts[k];
                        // Once the winner reaches its final count nothing displaces it: a
                        // later equal count belongs to a larger value.
                        if c > bc || (c == bc && x < best) {
                            best = x;
                            bc = c;
                        }
                    }
                }
                for i in 0..rows.len() {
                    for &x in &slice(i)[lo..hi] {
                        counts[key(x)] = 0;
                    }
                }
                let v = if bc == 0 || (missing && !self.skipna) {
                    fill
                } else {
                    best
                };
                *o = MaybeUninit::new(v);
            }
            return;
        }
        for &j in todo.iter() {
            let o = &mut out[j];
            let (lo, hi) = (ax.lo(j), ax.hi(j));
            buf.clear();
            let mut missing = false;
            for i in 0..rows.len() {
                for &x in &slice(i)[lo..hi] {
                    if miss.is(x) {
                        missing = true;
                    } else {
                        buf.push(x);
                    }
                }
            }
            *o = MaybeUninit::new(self.finish(buf, missing));
        }
    }
}

/// Mode of every window of geometry `g` over the native cells of `a`.
pub fn mode_reduce<T: Elem>(
    a: ArrayView4<'_, T>,
    g: &Geom,
    miss: Missing<T>,
    skipna: bool,
) -> Array4<T> {
    drive(a, g, &ModeRow { miss, skipna })
}

/// `pyramid_tile` for `mode`: every level from the tile's native cells (strict trim).
pub fn pyramid_tile_mode<T: Kernel>(
    v: ArrayView4<'_, T>,
    strides: &[[usize; 4]],
    miss: Missing<T>,
    skipna: bool,
    ndim: usize,
) -> Vec<AnyArray> {
    strides
        .iter()
        .map(|s| {
            let g = crate::reduce::strict_geom(v.shape(), s);
            T::into_any(squeeze(mode_reduce(v, &g, miss, skipna), ndim))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{block_reduce, new_accumulator};
    use crate::dtype::FillValue;
    use ndarray::s;
    use ndarray::{Array, ArrayD, IxDyn};
    use std::collections::BTreeMap;

    /// Reference: counts in a BTreeMap over the window's valid cells.
    fn reference(a: &ArrayD<i32>, s: [usize; 2], fill: Option<i32>, skipna: bool) -> Vec<i32> {
        let (h, w) = (a.shape()[0], a.shape()[1]);
        let (oh, ow) = (
            if h < s[0] { 1 } else { h / s[0] },
            if w < s[1] { 1 } else { w / s[1] },
        );
        let mut out = Vec::new();
        for i in 0..oh {
            for j in 0..ow {
                let mut m = BTreeMap::new();
                let mut missing = false;
                for r in i * s[0]..((i + 1) * s[0]).min(h) {
                    for c in j * s[1]..((j + 1) * s[1]).min(w) {
                        let x = a[[r, c]];
                        if Some(x) == fill {
                            missing = true;
                        } else {
                            *m.entry(x).or_insert(0) += 1;
                        }
                    }
                }
                let best = m
                    .iter()
                    .fold(None, |b: Option<(i32, i32)>, (&x, &c)| match b {
                        Some((_, bc)) if bc >= c => b,
                        _ => Some((x, c)),
                    });
                out.push(match best {
                    Some((x, _)) if skipna || !missing => x,
                    _ => fill.unwrap_or(0),
                });
            }
        }
        out
    }

    fn raster() -> ArrayD<i32> {
        Array::from_shape_fn(IxDyn(&[13, 17]), |ix| ((ix[0] * 7 + ix[1] * 3) % 5) as i32)
    }

    #[test]
    fn small_modes_and_ties() {
        assert_eq!(mode_of(&mut [3, 1, 3, 1]), 1);
        assert_eq!(mode_of(&mut [3, 1, 3, 2]), 3);
        let mut v: Vec<u8> = (0..40).map(|i| (i % 7) as u8).collect();
        assert_eq!(mode_of(&mut v), 0);
        let two = |r0: &[u8], r1: &[u8], fill: Option<u8>, skipna: bool| {
            let mut o = vec![MaybeUninit::uninit(); r0.len() / 2];
            mode_2x2(r0, r1, &mut o, Missing::new(fill), skipna);
            o.into_iter()
                .map(|x| unsafe { x.assume_init() })
                .collect::<Vec<u8>>()
        };
        assert_eq!(two(&[5, 2, 7, 7], &[5, 2, 7, 1], None, true), vec![2, 7]);
        assert_eq!(two(&[5, 2, 2, 2], &[5, 2, 2, 2], Some(2), true), vec![5, 2]);
        assert_eq!(two(&[5, 2], &[5, 2], Some(2), false), vec![2]);
        assert_eq!(two(&[4, 3], &[2, 1], None, true), vec![1]);
        let mut h = vec![(1, 2), (4, 1)];
        merge_runs(&mut h, &[(0, 1), (4, 2), (9, 3)]).unwrap();
        assert_eq!(h, vec![(0, 1), (1, 2), (4, 3), (9, 3)]);
        assert_eq!(mode_of_runs(&h), Some(4));
    }

    #[test]
    fn block_reduce_matches_reference() {
        let a = raster();
        for s in [[2usize, 2], [3, 2], [4, 8], [1, 5], [20, 3]] {
            for (fill, skipna) in [(None, true), (Some(2), true), (Some(2), false)] {
                let got = block_reduce(
                    a.view().into(),
                    &[s[0] as i64, s[1] as i64],
                    "mode",
                    fill.map(|f| FillValue::Int(f as i128)),
                    skipna,
                )
                .unwrap();
                let AnyArray::I32(got) = got else {
                    panic!("dtype")
                };
                assert_eq!(
                    got.iter().copied().collect::<Vec<_>>(),
                    reference(&a, s, fill, skipna),
                    "{s:?} {fill:?} {skipna}"
                );
            }
        }
    }

    #[test]
    fn accumulator_in_uneven_tiles() {
        let a = raster();
        let mut acc =
            new_accumulator(&[3, 4], "int32", "mode", Some(FillValue::Int(3)), true).unwrap();
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
        let cut = a.slice(s![..12, ..16]).to_owned().into_dyn();
        let want = reference(&cut, [4, 4], Some(3), true);
        let AnyArray::I32(got) = acc.result(None, None).unwrap() else {
            panic!("dtype")
        };
        assert_eq!(got.iter().copied().collect::<Vec<_>>(), want);
        assert!(acc.nbytes() > 0);
    }

    /// Histogram growth that cannot be allocated is an `OutOfMemory` error, not an abort (a
    /// request past `isize::MAX` bytes fails without touching memory).
    #[test]
    fn histogram_growth_reports_out_of_memory() {
        let mut h: Vec<(u16, u32)> = vec![(1, 1)];
        let err = try_grow(&mut h, usize::MAX / 4).unwrap_err();
        assert!(matches!(err, KernelError::OutOfMemory(n) if n > isize::MAX as usize));
        assert_eq!(h, vec![(1, 1)]);
        try_grow(&mut h, 10).unwrap();
        assert!(h.capacity() >= 11);
    }

    #[test]
    fn float_nan_skipped() {
        let a = Array::from_shape_vec(
            IxDyn(&[2, 4]),
            vec![
                1.5f32,
                f32::NAN,
                f32::NAN,
                f32::NAN,
                1.5,
                2.0,
                f32::NAN,
                f32::NAN,
            ],
        )
        .unwrap();
        let AnyArray::F32(r) = block_reduce(a.view().into(), &[2, 2], "mode", None, true).unwrap()
        else {
            panic!("dtype")
        };
        assert_eq!(r[[0, 0]], 1.5);
        assert!(r[[0, 1]].is_nan());
    }
}
