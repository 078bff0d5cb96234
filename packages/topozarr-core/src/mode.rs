//! Majority (`mode`) resampling for categorical rasters: the most frequent valid value of each
//! window of native cells. Missing cells (NaN, `fill_value`) are skipped; ties go to the
//! smallest value; a window without a valid value gives the fill value (NaN for floats without
//! one, 0 for integers without one); with `skipna=False` any missing cell makes the window
//! missing.
//!
//! Mode is not decomposable (the mode of modes is not the mode), so:
//! * `block_reduce` / `pyramid_tile` reduce every level from the native cells of the tile;
//! * the [`ModeAcc`] accumulator keeps an exact sparse histogram (sorted `(value, count)` pairs)
//!   per level cell, merged tile by tile. Its memory is the number of distinct valid values per
//!   level cell, which is small for categorical data (see the README for measured figures).
use crate::accumulate::{fold_geometry, index_list, LevelAccumulator};
use crate::dtype::{fill_for, Elem, FillValue, Missing};
use crate::error::{KernelError, Result};
use crate::kernel::{squeeze, AnyArray, AnyView, Kernel};
use crate::reduce::{drive, stride_cells, Ax, Geom, Method, RowKernel};
use ndarray::{s, Array4, ArrayView1, ArrayView4};
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

/// Sorted `(value, count)` runs of `v` (valid values), appended to `out`. Reorders `v`.
pub fn runs_of<T: Elem>(v: &mut [T], out: &mut Vec<(T, u32)>) {
    v.sort_unstable_by(cmp);
    for &x in v.iter() {
        match out.last_mut() {
            Some((y, c)) if *y == x => *c += 1,
            _ => out.push((x, 1)),
        }
    }
}

/// Merges the sorted runs `o` into the sorted runs `h`.
pub fn merge_runs<T: Elem>(h: &mut Vec<(T, u32)>, o: &[(T, u32)]) {
    if o.is_empty() {
        return;
    }
    if h.is_empty() {
        h.extend_from_slice(o);
        return;
    }
    let mut out = Vec::with_capacity(h.len() + o.len());
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

/// Output cells per batch of the 2x2 kernel (deinterleaved into stack arrays first, so the
/// selection loop is branch-free over plain arrays and the compiler vectorises it).
const BATCH: usize = 64;

/// 2x2 mode of rows `r0`, `r1` into `out` (`out.len() * 2 <= r0.len()`).
fn mode_2x2<T: Elem>(
    r0: &[T],
    r1: &[T],
    out: &mut [MaybeUninit<T>],
    miss: Missing<T>,
    skipna: bool,
) {
    let fill = miss.fill();
    let mut j0 = 0;
    while j0 < out.len() {
        let n = (out.len() - j0).min(BATCH);
        let mut x = [[T::default(); BATCH]; 4];
        let (a, b) = (&r0[2 * j0..2 * (j0 + n)], &r1[2 * j0..2 * (j0 + n)]);
        for (j, (p, q)) in a.chunks_exact(2).zip(b.chunks_exact(2)).enumerate() {
            x[0][j] = p[0];
            x[1][j] = p[1];
            x[2][j] = q[0];
            x[3][j] = q[1];
        }
        for (j, o) in out[j0..j0 + n].iter_mut().enumerate() {
            let w = [x[0][j], x[1][j], x[2][j], x[3][j]];
            let ok = w.map(|v| !miss.is(v));
            let e = |i: usize, k: usize| (ok[i] & ok[k] & (w[i] == w[k])) as u8;
            let (ab, ac, ad, bc, bd, cd) = (e(0, 1), e(0, 2), e(0, 3), e(1, 2), e(1, 3), e(2, 3));
            let c = [
                (1 + ab + ac + ad) * ok[0] as u8,
                (1 + ab + bc + bd) * ok[1] as u8,
                (1 + ac + bc + cd) * ok[2] as u8,
                (1 + ad + bd + cd) * ok[3] as u8,
            ];
            let (mut best, mut bc_) = (w[0], c[0]);
            for i in 1..4 {
                let better = (c[i] > bc_) | ((c[i] == bc_) & (w[i] < best));
                best = if better { w[i] } else { best };
                bc_ = if better { c[i] } else { bc_ };
            }
            let all = ok[0] & ok[1] & ok[2] & ok[3];
            let missing = (bc_ == 0) | (!all & !skipna);
            *o = MaybeUninit::new(if missing { fill } else { best });
        }
        j0 += n;
    }
}

/// Cells per window up to which [`mode_small`] counts by comparing every pair of cells.
const SMALL: usize = 16;

/// Mode of whole windows of at most [`SMALL`] cells (`rows.len() * s`) over contiguous rows:
/// windows are gathered in batches of [`BATCH`] into cell-major stack arrays, then every cell's
/// count is the number of equal valid cells, all in branch-free loops over the batch that the
/// compiler vectorises (no counting table, so no store-to-load chains on repeated classes).
#[allow(clippy::needless_range_loop)]
fn mode_small<T: Elem>(
    rows: &[&[T]],
    s: usize,
    out: &mut [MaybeUninit<T>],
    miss: Missing<T>,
    skipna: bool,
) {
    let n = rows.len() * s;
    debug_assert!(n <= SMALL && out.len() * s <= rows[0].len());
    let fill = miss.fill();
    let mut x = [[T::default(); BATCH]; SMALL];
    let mut ok = [[false; BATCH]; SMALL];
    let mut j0 = 0;
    while j0 < out.len() {
        let m = (out.len() - j0).min(BATCH);
        for (r, row) in rows.iter().enumerate() {
            let row = &row[j0 * s..(j0 + m) * s];
            for c in 0..s {
                let k = r * s + c;
                for (j, w) in row.chunks_exact(s).enumerate() {
                    x[k][j] = w[c];
                    ok[k][j] = !miss.is(w[c]);
                }
            }
        }
        let mut best = [T::default(); BATCH];
        let mut bc = [0u8; BATCH];
        let mut all = [true; BATCH];
        for i in 0..n {
            let mut cnt = [0u8; BATCH];
            for k in 0..n {
                for j in 0..BATCH {
                    cnt[j] += (ok[k][j] & (x[k][j] == x[i][j])) as u8;
                }
            }
            for j in 0..BATCH {
                let c = cnt[j] * ok[i][j] as u8;
                let better = (c > bc[j]) | ((c == bc[j]) & (x[i][j] < best[j]));
                best[j] = if better { x[i][j] } else { best[j] };
                bc[j] = if better { c } else { bc[j] };
                all[j] &= ok[i][j];
            }
        }
        for (j, o) in out[j0..j0 + m].iter_mut().enumerate() {
            let missing = (bc[j] == 0) | (!all[j] & !skipna);
            *o = MaybeUninit::new(if missing { fill } else { best[j] });
        }
        j0 += m;
    }
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

/// The table index of a one- or two-byte integer: its bit pattern.
#[inline(always)]
fn key<T: Elem>(x: T) -> usize {
    // SAFETY: only called when `counted::<T>()`: T is a plain 1- or 2-byte integer.
    match std::mem::size_of::<T>() {
        1 => unsafe { std::mem::transmute_copy::<T, u8>(&x) as usize },
        _ => unsafe { std::mem::transmute_copy::<T, u16>(&x) as usize },
    }
}

/// Per-thread scratch of the mode row kernel.
#[derive(Default)]
pub struct ModeScratch<T> {
    buf: Vec<T>,
    counts: Vec<u32>,
    rows: Vec<Vec<T>>,
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
        // Small whole windows over contiguous rows: pairwise counting, vectorised.
        if rows.len() * ax.s <= SMALL && ax.p == 0 && out.len() * ax.s <= ax.n {
            let sl: Vec<&[T]> = rows.iter().filter_map(|r| r.as_slice()).collect();
            if sl.len() == rows.len() {
                mode_small(&sl, ax.s, out, miss, self.skipna);
                return;
            }
        }
        // Contiguous row slices (strided rows are copied once).
        let ModeScratch {
            buf,
            counts,
            rows: owned,
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
            for (j, o) in out.iter_mut().enumerate() {
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
        for (j, o) in out.iter_mut().enumerate() {
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

/// Exact sparse histograms of one level, fed tile by tile (the `Accumulator` for `mode`).
pub struct ModeAcc<T: Elem> {
    miss: Missing<T>,
    skipna: bool,
    ndim: usize,
    shape: [usize; 4],
    stride: Option<[usize; 4]>,
    /// Sorted `(value, count)` runs of the valid native cells of each level cell (row-major).
    cells: Vec<Vec<(T, u32)>>,
}

impl<T: Kernel> ModeAcc<T> {
    fn flat(&self, i: [usize; 4]) -> usize {
        ((i[0] * self.shape[1] + i[1]) * self.shape[2] + i[2]) * self.shape[3] + i[3]
    }
}

impl<T: Kernel> LevelAccumulator for ModeAcc<T> {
    fn fold(
        &mut self,
        a: AnyView<'_>,
        offset: &[i64],
        stride: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<()> {
        let (v, offset, _phase, g) =
            fold_geometry::<T>(a, self.ndim, offset, stride, phase, &mut self.stride)?;
        let n: [usize; 4] =
            std::array::from_fn(|i| g[i].out.min(self.shape[i].saturating_sub(offset[i])));
        let mut buf: Vec<T> = Vec::new();
        let mut runs: Vec<(T, u32)> = Vec::new();
        for i0 in 0..n[0] {
            for i1 in 0..n[1] {
                for i2 in 0..n[2] {
                    for i3 in 0..n[3] {
                        let w = v.slice(s![
                            g[0].lo(i0)..g[0].hi(i0),
                            g[1].lo(i1)..g[1].hi(i1),
                            g[2].lo(i2)..g[2].hi(i2),
                            g[3].lo(i3)..g[3].hi(i3)
                        ]);
                        buf.clear();
                        let miss = self.miss;
                        buf.extend(w.iter().copied().filter(|&x| !miss.is(x)));
                        if buf.is_empty() {
                            continue;
                        }
                        runs.clear();
                        runs_of(&mut buf, &mut runs);
                        let k = self.flat([
                            offset[0] + i0,
                            offset[1] + i1,
                            offset[2] + i2,
                            offset[3] + i3,
                        ]);
                        merge_runs(&mut self.cells[k], &runs);
                    }
                }
            }
        }
        Ok(())
    }

    fn result(&self, start: Option<&[i64]>, stop: Option<&[i64]>) -> Result<AnyArray> {
        let nd = self.ndim;
        let shape = self.shape;
        let start = match start {
            Some(s) => index_list(s, nd, "start")?,
            None => [0; 4],
        };
        let stop = match stop {
            Some(s) => {
                let mut s = index_list(s, nd, "stop")?;
                s[..4 - nd].fill(1);
                s
            }
            None => shape,
        };
        if (0..4).any(|i| start[i] > stop[i] || stop[i] > shape[i]) {
            return Err(KernelError::Invalid(format!(
                "region start={:?} stop={:?} is not inside the level shape {:?}",
                &start[4 - nd..],
                &stop[4 - nd..],
                &shape[4 - nd..]
            )));
        }
        // Cells of windows never folded count as missing (fewer valid cells than a window).
        let full = match self.stride {
            Some(s) => stride_cells(&s)? as u64,
            None => 1,
        };
        let rshape: [usize; 4] = std::array::from_fn(|i| stop[i] - start[i]);
        let mut out = Vec::with_capacity(rshape.iter().product());
        for i0 in start[0]..stop[0] {
            for i1 in start[1]..stop[1] {
                for i2 in start[2]..stop[2] {
                    for i3 in start[3]..stop[3] {
                        let h = &self.cells[self.flat([i0, i1, i2, i3])];
                        let valid: u64 = h.iter().map(|&(_, c)| c as u64).sum();
                        let v = if valid < full && !self.skipna {
                            None
                        } else {
                            mode_of_runs(h)
                        };
                        out.push(v.unwrap_or(self.miss.fill()));
                    }
                }
            }
        }
        let out = Array4::from_shape_vec(rshape, out).expect("region size");
        Ok(T::into_any(squeeze(out, nd)))
    }

    fn nbytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<Vec<(T, u32)>>()
            + self
                .cells
                .iter()
                .map(|h| h.capacity() * std::mem::size_of::<(T, u32)>())
                .sum::<usize>()
    }

    fn shape(&self) -> Vec<usize> {
        self.shape[4 - self.ndim..].to_vec()
    }

    fn dtype(&self) -> &'static str {
        T::NAME
    }

    fn method(&self) -> Method {
        Method::Mode
    }
}

/// A new `mode` accumulator for one level of `shape` (level cells, 1 to 4 dimensions).
pub fn new_mode_accumulator<T: Kernel>(
    shape: &[usize],
    fill: Option<FillValue>,
    skipna: bool,
) -> Result<Box<dyn LevelAccumulator>> {
    let miss = Missing::new(fill_for::<T>(fill)?);
    let ndim = shape.len();
    let shape4: [usize; 4] = std::array::from_fn(|i| {
        if i < 4 - ndim {
            1
        } else {
            shape[i - (4 - ndim)]
        }
    });
    let cell = std::mem::size_of::<Vec<(T, u32)>>();
    let cells = shape4.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    let bytes = cells.and_then(|c| c.checked_mul(cell));
    let (Some(cells), Some(bytes)) = (cells, bytes) else {
        return Err(KernelError::OutOfMemory(usize::MAX));
    };
    let mut v: Vec<Vec<(T, u32)>> = Vec::new();
    v.try_reserve_exact(cells)
        .map_err(|_| KernelError::OutOfMemory(bytes))?;
    v.resize_with(cells, Vec::new);
    Ok(Box::new(ModeAcc {
        miss,
        skipna,
        ndim,
        shape: shape4,
        stride: None,
        cells: v,
    }))
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
    use crate::accumulate::new_accumulator;
    use crate::kernel::block_reduce;
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
        merge_runs(&mut h, &[(0, 1), (4, 2), (9, 3)]);
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
