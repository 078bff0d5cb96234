//! AVX2 `mode` of square windows of one- and two-byte integers. 4x4 and 8x8 in the rows' own
//! layout: a 32-byte load of a row holds one window row of several neighbouring windows, each
//! in its own lane group of `S` cells. Every cell's count is the number of equal cells of its
//! window, found by comparing each row against every row rotated by 0..S cells inside the
//! groups (one byte shuffle per rotation): `R * S * R` compare-and-subtract instructions for
//! `32 / (S * B)` windows, with no gather into a cell-major layout and no counting table. The
//! winner is the smallest value among the cells with the largest count, taken with
//! max/min instructions across rows and then across each group by rotation.
//!
//! Missing cells: integers have no NaN, so a cell is missing only when it equals the fill
//! value; a valid cell can never equal a missing one, so the counts need no validity mask
//! except to zero the counts of the missing cells themselves.
//!
//! Windows of 8x8 (two-byte cells) up to 32x32 go through [`large`]: the same kernel on 4x4
//! sub-windows gives candidates and a bound that decides almost every window of a class map;
//! the rest go back to the caller's exact counting table.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Lane width: one- or two-byte cells.
pub trait Width {
    const B: usize;
    unsafe fn eq(a: __m256i, b: __m256i) -> __m256i;
    unsafe fn sub(a: __m256i, b: __m256i) -> __m256i;
    unsafe fn add(a: __m256i, b: __m256i) -> __m256i;
    unsafe fn max_u(a: __m256i, b: __m256i) -> __m256i;
    unsafe fn min<const SIGNED: bool>(a: __m256i, b: __m256i) -> __m256i;
    unsafe fn splat(x: u16) -> __m256i;
    /// The largest value, the neutral start of the min.
    unsafe fn top<const SIGNED: bool>() -> __m256i;
}

pub struct W8;
pub struct W16;

impl Width for W8 {
    const B: usize = 1;
    #[inline(always)]
    unsafe fn eq(a: __m256i, b: __m256i) -> __m256i {
        _mm256_cmpeq_epi8(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256i, b: __m256i) -> __m256i {
        _mm256_sub_epi8(a, b)
    }
    #[inline(always)]
    unsafe fn add(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi8(a, b)
    }
    #[inline(always)]
    unsafe fn max_u(a: __m256i, b: __m256i) -> __m256i {
        _mm256_max_epu8(a, b)
    }
    #[inline(always)]
    unsafe fn min<const SIGNED: bool>(a: __m256i, b: __m256i) -> __m256i {
        if SIGNED {
            _mm256_min_epi8(a, b)
        } else {
            _mm256_min_epu8(a, b)
        }
    }
    #[inline(always)]
    unsafe fn splat(x: u16) -> __m256i {
        _mm256_set1_epi8(x as u8 as i8)
    }
    #[inline(always)]
    unsafe fn top<const SIGNED: bool>() -> __m256i {
        _mm256_set1_epi8(if SIGNED { i8::MAX } else { -1 })
    }
}

impl Width for W16 {
    const B: usize = 2;
    #[inline(always)]
    unsafe fn eq(a: __m256i, b: __m256i) -> __m256i {
        _mm256_cmpeq_epi16(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256i, b: __m256i) -> __m256i {
        _mm256_sub_epi16(a, b)
    }
    #[inline(always)]
    unsafe fn add(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi16(a, b)
    }
    #[inline(always)]
    unsafe fn max_u(a: __m256i, b: __m256i) -> __m256i {
        _mm256_max_epu16(a, b)
    }
    #[inline(always)]
    unsafe fn min<const SIGNED: bool>(a: __m256i, b: __m256i) -> __m256i {
        if SIGNED {
            _mm256_min_epi16(a, b)
        } else {
            _mm256_min_epu16(a, b)
        }
    }
    #[inline(always)]
    unsafe fn splat(x: u16) -> __m256i {
        _mm256_set1_epi16(x as i16)
    }
    #[inline(always)]
    unsafe fn top<const SIGNED: bool>() -> __m256i {
        _mm256_set1_epi16(if SIGNED { i16::MAX } else { -1 })
    }
}

#[inline(always)]
unsafe fn top_all() -> __m256i {
    _mm256_set1_epi8(-1)
}

/// What the 8x8 kernel tells the large-window path about one 8x8 sub-window (all as
/// zero-extended bit patterns / counts).
#[derive(Clone, Copy, Default, Debug)]
pub struct Stats {
    /// The sub-window's mode (meaningless when `count` is 0).
    pub value: u16,
    /// Its count.
    pub count: u16,
    /// The largest count of any other value (an upper bound of each of their counts).
    pub second: u16,
    /// Valid cells.
    pub valid: u16,
}

/// The `vpshufb` mask that rotates every group of `s` cells of `b` bytes by `q` cells (the
/// same in both 128-bit lanes; a group never crosses a lane because `s * b <= 16`).
fn rotation(s: usize, b: usize, q: usize) -> [u8; 32] {
    let g = s * b;
    std::array::from_fn(|p| {
        let p16 = p % 16;
        let (grp, within) = (p16 / g, p16 % g);
        let (cell, byte) = (within / b, within % b);
        (grp * g + ((cell + q) % s) * b + byte) as u8
    })
}

/// Mode of windows of `R` rows by `S` columns into `out` (`nwin` cells of `W::B` bytes): as
/// many whole vectors of windows as fit; returns how many windows were done (the caller
/// finishes the rest). `rows` are the cells' bytes.
///
/// With `STATS`, also writes each window's [`Stats`] (and `skipna` must be true).
///
/// # Safety
/// AVX2 must be available; every row holds at least `nwin * S` cells; `out` is valid for
/// `nwin * W::B` bytes of writes, and `stats` (with `STATS`) for `nwin` entries.
#[inline(always)]
unsafe fn kernel<
    W: Width,
    const R: usize,
    const S: usize,
    const SIGNED: bool,
    const STATS: bool,
>(
    rows: &[&[u8]],
    out: *mut u8,
    stats: *mut Stats,
    nwin: usize,
    fill: u16,
    has_fill: bool,
    skipna: bool,
) -> usize {
    let b = W::B;
    let g = S * b;
    let per = 32 / g;
    debug_assert!(rows.len() == R && rows.iter().all(|r| r.len() >= nwin * g));
    debug_assert!(R * S < 256 && S.is_power_of_two() && g <= 16);
    let rot: [__m256i; S] = std::array::from_fn(|q| {
        let m = rotation(S, b, q);
        _mm256_loadu_si256(m.as_ptr() as *const __m256i)
    });
    let zero = _mm256_setzero_si256();
    let fillv = W::splat(fill);
    let top = W::top::<SIGNED>();
    let mut res = [0u8; 32];
    let mut j = 0;
    while j + per <= nwin {
        let off = j * g;
        let r: [__m256i; R] =
            std::array::from_fn(|i| _mm256_loadu_si256(rows[i].as_ptr().add(off) as *const _));
        let mut cnt = [zero; R];
        for k in 0..R {
            for (q, m) in rot.iter().enumerate() {
                let v = if q == 0 {
                    r[k]
                } else {
                    _mm256_shuffle_epi8(r[k], *m)
                };
                for i in 0..R {
                    cnt[i] = W::sub(cnt[i], W::eq(r[i], v));
                }
            }
        }
        let mut bad = zero;
        if has_fill {
            for i in 0..R {
                let m = W::eq(r[i], fillv);
                bad = _mm256_or_si256(bad, m);
                cnt[i] = _mm256_andnot_si256(m, cnt[i]);
            }
        }
        let mut mx = cnt[0];
        for c in &cnt[1..] {
            mx = W::max_u(mx, *c);
        }
        let mut h = 1;
        while h < S {
            mx = W::max_u(mx, _mm256_shuffle_epi8(mx, rot[h]));
            h *= 2;
        }
        let mut best = top;
        for i in 0..R {
            let v = _mm256_blendv_epi8(top, r[i], W::eq(cnt[i], mx));
            best = W::min::<SIGNED>(best, v);
        }
        let mut h = 1;
        while h < S {
            best = W::min::<SIGNED>(best, _mm256_shuffle_epi8(best, rot[h]));
            h *= 2;
        }
        // No valid cell: every count is 0. With `skipna=False`, also any missing cell.
        let mut missing = W::eq(mx, zero);
        if !skipna && has_fill {
            let mut h = 1;
            while h < S {
                bad = _mm256_or_si256(bad, _mm256_shuffle_epi8(bad, rot[h]));
                h *= 2;
            }
            missing = _mm256_or_si256(missing, bad);
        }
        let v = _mm256_blendv_epi8(best, fillv, missing);
        _mm256_storeu_si256(res.as_mut_ptr() as *mut __m256i, v);
        // Every cell of a group now holds the answer; take the first.
        if !STATS {
            for w in 0..per {
                std::ptr::copy_nonoverlapping(res.as_ptr().add(w * g), out.add((j + w) * b), b);
            }
        } else {
            // The largest count among the other values, and the number of valid cells.
            let mut second = zero;
            let mut valid = zero;
            for i in 0..R {
                let other = _mm256_andnot_si256(W::eq(r[i], best), cnt[i]);
                second = W::max_u(second, other);
                if has_fill {
                    valid = W::sub(valid, _mm256_andnot_si256(W::eq(r[i], fillv), top_all()));
                }
            }
            let mut h = 1;
            while h < S {
                second = W::max_u(second, _mm256_shuffle_epi8(second, rot[h]));
                if has_fill {
                    valid = W::add(valid, _mm256_shuffle_epi8(valid, rot[h]));
                }
                h *= 2;
            }
            let mut sec = [0u8; 32];
            let mut val = [0u8; 32];
            let mut top_c = [0u8; 32];
            _mm256_storeu_si256(sec.as_mut_ptr() as *mut __m256i, second);
            _mm256_storeu_si256(val.as_mut_ptr() as *mut __m256i, valid);
            _mm256_storeu_si256(top_c.as_mut_ptr() as *mut __m256i, mx);
            let cell = |a: &[u8; 32], w: usize| -> u16 {
                if b == 1 {
                    a[w * g] as u16
                } else {
                    u16::from_le_bytes([a[w * g], a[w * g + 1]])
                }
            };
            for w in 0..per {
                *stats.add(j + w) = Stats {
                    value: cell(&res, w),
                    count: cell(&top_c, w),
                    second: cell(&sec, w),
                    valid: if has_fill {
                        cell(&val, w)
                    } else {
                        (R * S) as u16
                    },
                };
            }
        }
        j += per;
    }
    j
}

macro_rules! entry {
    ($name:ident, $w:ty, $r:literal, $s:literal, $signed:literal) => {
        #[target_feature(enable = "avx2")]
        unsafe fn $name(
            rows: &[&[u8]],
            out: *mut u8,
            nwin: usize,
            fill: u16,
            has_fill: bool,
            skipna: bool,
        ) -> usize {
            kernel::<$w, $r, $s, $signed, false>(
                rows,
                out,
                std::ptr::null_mut(),
                nwin,
                fill,
                has_fill,
                skipna,
            )
        }
    };
}

entry!(u8_4x4, W8, 4, 4, false);
entry!(i8_4x4, W8, 4, 4, true);
entry!(u16_4x4, W16, 4, 4, false);
entry!(i16_4x4, W16, 4, 4, true);
entry!(u8_8x8, W8, 8, 8, false);
entry!(i8_8x8, W8, 8, 8, true);
entry!(u16_8x8, W16, 8, 8, false);
entry!(i16_8x8, W16, 8, 8, true);

/// Cell type, window side and missing-value rule of a call of [`square`].
pub struct Square {
    /// 1 or 2.
    pub bytes: usize,
    pub signed: bool,
    /// 4 or 8 (anything else does nothing).
    pub s: usize,
    pub fill: u16,
    pub has_fill: bool,
    pub skipna: bool,
}

/// Runs the AVX2 kernel for `s x s` windows (`rows.len() == s`), if there is one; returns how
/// many of the `nwin` windows it did (from the first).
///
/// # Safety
/// AVX2 must be available; every row holds at least `nwin * s` cells of `bytes` bytes; `out`
/// is valid for `nwin * bytes` bytes of writes.
pub unsafe fn square(rows: &[&[u8]], out: *mut u8, nwin: usize, k: &Square) -> usize {
    let s = k.s;
    if rows.len() != s {
        return 0;
    }
    if rows.len() != s {
        return 0;
    }
    let f = match (s, k.bytes, k.signed) {
        (4, 1, false) => u8_4x4,
        (4, 1, true) => i8_4x4,
        (4, 2, false) => u16_4x4,
        (4, 2, true) => i16_4x4,
        (8, 1, false) => u8_8x8,
        (8, 1, true) => i8_8x8,
        (8, 2, false) => u16_8x8,
        (8, 2, true) => i16_8x8,
        _ => return 0,
    };
    f(rows, out, nwin, k.fill, k.has_fill, k.skipna)
}

macro_rules! stats_entry {
    ($name:ident, $w:ty, $t:literal, $signed:literal) => {
        #[target_feature(enable = "avx2")]
        unsafe fn $name(
            rows: &[&[u8]],
            stats: *mut Stats,
            nwin: usize,
            fill: u16,
            has_fill: bool,
        ) -> usize {
            kernel::<$w, $t, $t, $signed, true>(
                rows,
                std::ptr::null_mut(),
                stats,
                nwin,
                fill,
                has_fill,
                true,
            )
        }
    };
}

stats_entry!(u8_stats4, W8, 4, false);
stats_entry!(i8_stats4, W8, 4, true);
stats_entry!(u16_stats4, W16, 4, false);
stats_entry!(i16_stats4, W16, 4, true);

/// Cells equal to `v` (bit pattern, `b` bytes per cell) in `len` bytes from `lo` of each row;
/// `len` is a multiple of 16.
#[inline(always)]
unsafe fn count_eq(rows: &[&[u8]], lo: usize, len: usize, b: usize, v: u16) -> u32 {
    let pat = if b == 1 {
        _mm_set1_epi8(v as u8 as i8)
    } else {
        _mm_set1_epi16(v as i16)
    };
    let zero = _mm_setzero_si128();
    let mut total = zero;
    for r in rows {
        let p = r.as_ptr().add(lo);
        let mut acc = zero;
        for c in (0..len).step_by(16) {
            let x = _mm_loadu_si128(p.add(c) as *const __m128i);
            let e = if b == 1 {
                _mm_cmpeq_epi8(x, pat)
            } else {
                _mm_cmpeq_epi16(x, pat)
            };
            // At most len / 16 <= 15 per byte lane before the row's flush below.
            acc = _mm_sub_epi8(acc, e);
        }
        total = _mm_add_epi64(total, _mm_sad_epu8(acc, zero));
    }
    let n = (_mm_cvtsi128_si64(total) + _mm_extract_epi64::<1>(total)) as u32;
    // A two-byte cell that matches counts once in each of its bytes.
    n / b as u32
}

/// Side of the sub-windows of [`large`].
const SUB: usize = 4;
/// Sub-windows per large window up to which [`large`] runs (a 32x32 window).
const MAX_SUBS: usize = 64;

/// `s x s` windows for `s` a multiple of 4 from 8 to 32 (the pyramid's deeper levels), exact
/// through a bound: the 4x4 kernel gives each 4x4 sub-window its mode `m`, count, the largest
/// count `c2` of any other value, and its valid cells. The candidates are the sub-window
/// modes, counted exactly over the whole window with SIMD compares. A value that is no
/// candidate is no sub-window's mode, so its count is at most the sum of the `c2`, and at
/// most the valid cells no candidate holds. When the best candidate's count exceeds that
/// bound it is the mode (ties among the candidates to the smallest); otherwise the window
/// goes to `pending` (for the caller's exact counting table). Blocky class maps almost always
/// pass: a block dominates its sub-windows and noise is spread over many values. Returns false
/// (nothing done) when the shape or type is not one it handles.
///
/// # Safety
/// AVX2 must be available; every row holds at least `nwin * s` cells of `k.bytes` bytes; `out`
/// is valid for `nwin * k.bytes` bytes of writes.
#[target_feature(enable = "avx2")]
pub unsafe fn large(
    rows: &[&[u8]],
    out: *mut u8,
    nwin: usize,
    k: &Square,
    stats: &mut Vec<Stats>,
    pending: &mut Vec<usize>,
) -> bool {
    let s = k.s;
    let q = s / SUB;
    let b = k.bytes;
    if s < 2 * SUB || s % SUB != 0 || rows.len() != s || q * q > MAX_SUBS || b > 2 {
        return false;
    }
    // Whole rows of a window in 16-byte loads for the candidate counts.
    if (s * b) % 16 != 0 {
        return false;
    }
    let f = match (b, k.signed) {
        (1, false) => u8_stats4,
        (1, true) => i8_stats4,
        (2, false) => u16_stats4,
        _ => i16_stats4,
    };
    let nsub = nwin * q;
    stats.clear();
    stats.resize(q * nsub, Stats::default());
    pending.clear();
    let mut done = nsub;
    for band in 0..q {
        let st = stats.as_mut_ptr().add(band * nsub);
        done = done.min(f(
            &rows[band * SUB..(band + 1) * SUB],
            st,
            nsub,
            k.fill,
            k.has_fill,
        ));
    }
    let sign = if !k.signed {
        0
    } else if b == 1 {
        0x80
    } else {
        0x8000
    };
    let fill = k.fill.to_le_bytes();
    let mut cand = [0u16; MAX_SUBS];
    for w in 0..nwin {
        if (w + 1) * q > done {
            pending.push(w);
            continue;
        }
        let (mut valid, mut second, mut nc) = (0u32, 0u32, 0usize);
        for band in 0..q {
            for st in &stats[band * nsub + w * q..band * nsub + (w + 1) * q] {
                valid += st.valid as u32;
                second += st.second as u32;
                if st.count > 0 && !cand[..nc].contains(&st.value) {
                    cand[nc] = st.value;
                    nc += 1;
                }
            }
        }
        let v = if valid == 0 || (!k.skipna && valid < (s * s) as u32) {
            None
        } else {
            let (mut best, mut covered) = ((0u16, 0u32), 0u32);
            for &c in &cand[..nc] {
                let n = count_eq(rows, w * s * b, s * b, b, c);
                covered += n;
                if n > best.1 || (n == best.1 && (c ^ sign) < (best.0 ^ sign)) {
                    best = (c, n);
                }
            }
            if best.1 > second.min(valid - covered) {
                Some(best.0)
            } else {
                pending.push(w);
                continue;
            }
        };
        let bytes = v.map_or(fill, |v| v.to_le_bytes());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(w * b), b);
    }
    true
}
