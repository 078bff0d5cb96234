//! AVX2 `mode` of square windows of one- and two-byte integers. 4x4 (and 8x8 of one-byte
//! cells; two-byte 8x8 windows are faster through the large-window bound) in the rows' own
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
//! Windows of 8x8 (two-byte cells) up to 32x32 go through [`crate::mode_large`]: the same
//! kernel on 4x4 sub-windows ([`stats4`]) gives candidates and a bound that decides almost
//! every window of a class map; the rest go back to the caller's exact counting table.
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

/// The missing-value rule of one kernel call: `fill` marks missing cells when `has_fill`.
#[derive(Clone, Copy)]
struct Rule {
    fill: u16,
    has_fill: bool,
    skipna: bool,
}

/// How [`across`] combines the cells of a group.
#[derive(Clone, Copy)]
enum Lanes {
    MaxU,
    MinS,
    MinU,
    Or,
    Add,
}

/// Combines the `S` cells of every group (as laid out by [`rotation`]) with `op`, so each cell
/// of a group holds the result for the whole group: log2(S) rotate-and-combine steps.
#[inline(always)]
unsafe fn across<W: Width, const S: usize>(
    mut v: __m256i,
    rot: &[__m256i; S],
    op: Lanes,
) -> __m256i {
    let mut h = 1;
    while h < S {
        let o = _mm256_shuffle_epi8(v, rot[h]);
        v = match op {
            Lanes::MaxU => W::max_u(v, o),
            Lanes::MinS => W::min::<true>(v, o),
            Lanes::MinU => W::min::<false>(v, o),
            Lanes::Or => _mm256_or_si256(v, o),
            Lanes::Add => W::add(v, o),
        };
        h *= 2;
    }
    v
}

/// Mode of windows of `R` rows by `S` columns into `out` (`nwin` cells of `W::B` bytes): as
/// many whole vectors of windows as fit; returns how many windows were done (the caller
/// finishes the rest). `rows` are the cells' bytes.
///
/// With `STATS` (and `skipna` true), writes no `out` but four planes of `plane` bytes from
/// `stats`, in the windows' own layout (window `w` at byte `w * S * W::B` of each plane, as a
/// cell of `W::B` bytes): the mode, its count, the largest count of any other value (an upper
/// bound of each of their counts) and the valid cells. Whole vectors are stored as they are,
/// so the large-window pass reads them with no repacking.
///
/// # Safety
/// AVX2 must be available; every row holds at least `nwin * S` cells; `out` is valid for
/// `nwin * W::B` bytes of writes, and `stats` (with `STATS`) for `4 * plane` bytes, with
/// `plane >= nwin * S * W::B`.
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
    stats: *mut u8,
    plane: usize,
    nwin: usize,
    rule: Rule,
) -> usize {
    let Rule {
        fill,
        has_fill,
        skipna,
    } = rule;
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
        let mx = across::<W, S>(mx, &rot, Lanes::MaxU);
        let mut best = top;
        for i in 0..R {
            let v = _mm256_blendv_epi8(top, r[i], W::eq(cnt[i], mx));
            best = W::min::<SIGNED>(best, v);
        }
        let min = if SIGNED { Lanes::MinS } else { Lanes::MinU };
        let best = across::<W, S>(best, &rot, min);
        // No valid cell: every count is 0. With `skipna=False`, also any missing cell.
        let mut missing = W::eq(mx, zero);
        if !skipna && has_fill {
            missing = _mm256_or_si256(missing, across::<W, S>(bad, &rot, Lanes::Or));
        }
        let v = _mm256_blendv_epi8(best, fillv, missing);
        if !STATS {
            _mm256_storeu_si256(res.as_mut_ptr() as *mut __m256i, v);
            // Every cell of a group now holds the answer; take the first.
            for w in 0..per {
                std::ptr::copy_nonoverlapping(res.as_ptr().add(w * g), out.add((j + w) * b), b);
            }
        } else {
            // The largest count among the other values, and the number of valid cells.
            let mut second = zero;
            let mut valid = W::splat((R * S) as u16);
            if has_fill {
                valid = zero;
            }
            for i in 0..R {
                let other = _mm256_andnot_si256(W::eq(r[i], best), cnt[i]);
                second = W::max_u(second, other);
                if has_fill {
                    valid = W::sub(valid, _mm256_andnot_si256(W::eq(r[i], fillv), top_all()));
                }
            }
            let second = across::<W, S>(second, &rot, Lanes::MaxU);
            if has_fill {
                valid = across::<W, S>(valid, &rot, Lanes::Add);
            }
            let p = stats.add(off);
            _mm256_storeu_si256(p as *mut __m256i, v);
            _mm256_storeu_si256(p.add(plane) as *mut __m256i, mx);
            _mm256_storeu_si256(p.add(2 * plane) as *mut __m256i, second);
            _mm256_storeu_si256(p.add(3 * plane) as *mut __m256i, valid);
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
                0,
                nwin,
                Rule {
                    fill,
                    has_fill,
                    skipna,
                },
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

/// Cell type, window side and missing-value rule of a call of [`square`].
pub struct Square {
    /// 1 or 2.
    pub bytes: usize,
    pub signed: bool,
    /// 4, or 8 for one-byte cells (anything else does nothing).
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
    let f = match (s, k.bytes, k.signed) {
        (4, 1, false) => u8_4x4,
        (4, 1, true) => i8_4x4,
        (4, 2, false) => u16_4x4,
        (4, 2, true) => i16_4x4,
        (8, 1, false) => u8_8x8,
        (8, 1, true) => i8_8x8,
        _ => return 0,
    };
    f(rows, out, nwin, k.fill, k.has_fill, k.skipna)
}

macro_rules! stats_entry {
    ($name:ident, $w:ty, $t:literal, $signed:literal) => {
        #[target_feature(enable = "avx2")]
        unsafe fn $name(
            rows: &[&[u8]],
            stats: *mut u8,
            plane: usize,
            nwin: usize,
            fill: u16,
            has_fill: bool,
        ) -> usize {
            kernel::<$w, $t, $t, $signed, true>(
                rows,
                std::ptr::null_mut(),
                stats,
                plane,
                nwin,
                Rule {
                    fill,
                    has_fill,
                    skipna: true,
                },
            )
        }
    };
}

stats_entry!(u8_stats4, W8, 4, false);
stats_entry!(i8_stats4, W8, 4, true);
stats_entry!(u16_stats4, W16, 4, false);
stats_entry!(i16_stats4, W16, 4, true);

/// The 4x4 stats kernel (planes as in [`kernel`] with `STATS`): `(rows, stats, plane, nwin,
/// fill, has_fill) -> windows done`.
pub type StatsFn = unsafe fn(&[&[u8]], *mut u8, usize, usize, u16, bool) -> usize;

/// The 4x4 stats kernel for cells of `bytes` (1 or 2) bytes.
pub fn stats4(bytes: usize, signed: bool) -> StatsFn {
    match (bytes, signed) {
        (1, false) => u8_stats4,
        (1, true) => i8_stats4,
        (2, false) => u16_stats4,
        _ => i16_stats4,
    }
}
