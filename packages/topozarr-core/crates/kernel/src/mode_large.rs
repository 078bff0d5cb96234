//! AVX2 `mode` of square windows of 8x8 (two-byte cells) to 32x32 of one- and two-byte
//! integers, exact through a bound. The 4x4 stats kernel of [`crate::mode_avx2`] gives each
//! 4x4 sub-window its mode, that mode's count, the largest count of any other value and its
//! valid cells. The candidates are the distinct sub-window modes (mostly the few classes of a
//! class map's blocks), counted exactly over the whole window, four at a time in one pass over
//! its cells. A value that is no candidate is no sub-window's mode, so its count is at most
//! the sum of the sub-windows' runner-up counts; any value not counted yet has at most the
//! valid cells no counted candidate holds. When the best counted candidate beats the bound it
//! is the mode (ties among the candidates to the smallest); otherwise the window is left to
//! the caller's exact counting table (high cardinality spread evenly, rare on class maps).
#![cfg(target_arch = "x86_64")]

use crate::mode_avx2::{stats4, Square, Width, W16, W8};
use std::arch::x86_64::*;

/// Side of the sub-windows.
const SUB: usize = 4;
/// Sub-windows per window up to which [`large`] runs (a 32x32 window).
const MAX_SUBS: usize = 64;
/// Candidates counted per pass over a window's cells: each 32-byte load is compared with all
/// of them, and four accumulators with the loaded rows stay in registers.
const GROUP: usize = 4;
/// Bytes of each row per chunk of windows (see [`large_t`]).
const CHUNK: usize = 512;

/// Cells equal to each of `pats` (splatted bit patterns) in `len` bytes from `lo` of each
/// row; `len` is a multiple of 32, or 16 with an even number of rows (two rows per load).
#[inline(always)]
unsafe fn count_group<W: Width>(
    rows: &[&[u8]],
    lo: usize,
    len: usize,
    pats: &[__m256i; GROUP],
) -> [u32; GROUP] {
    let zero = _mm256_setzero_si256();
    let mut acc = [zero; GROUP];
    // Lane counts reach at most rows * len / 32 <= 64 (a 32x32 window of two-byte cells), so
    // they fit a byte and the byte sums below are exact (a two-byte lane's high byte is 0).
    if len % 32 == 0 {
        for r in rows {
            let p = r.as_ptr().add(lo);
            for c in (0..len).step_by(32) {
                let x = _mm256_loadu_si256(p.add(c) as *const __m256i);
                for k in 0..GROUP {
                    acc[k] = W::sub(acc[k], W::eq(x, pats[k]));
                }
            }
        }
    } else {
        for pair in rows.chunks_exact(2) {
            let x = _mm256_loadu2_m128i(
                pair[1].as_ptr().add(lo) as *const __m128i,
                pair[0].as_ptr().add(lo) as *const __m128i,
            );
            for k in 0..GROUP {
                acc[k] = W::sub(acc[k], W::eq(x, pats[k]));
            }
        }
    }
    // Plain loops, not closures: a closure would not inherit AVX2 and call the intrinsics.
    let mut n = [0u32; GROUP];
    for k in 0..GROUP {
        let s = _mm256_sad_epu8(acc[k], zero);
        let h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        n[k] = (_mm_cvtsi128_si64(h) + _mm_extract_epi64::<1>(h)) as u32;
    }
    n
}

/// `s x s` windows for `s` a multiple of 4 from 8 to 32 (the pyramid's deeper levels), through
/// the bound of the module docs: every window of `out` is written except those pushed to
/// `pending`. Returns false (nothing done) when the shape or type is not one it handles.
///
/// # Safety
/// AVX2 must be available; every row holds at least `nwin * s` cells of `k.bytes` bytes; `out`
/// is valid for `nwin * k.bytes` bytes of writes.
pub unsafe fn large(
    rows: &[&[u8]],
    out: *mut u8,
    nwin: usize,
    k: &Square,
    stats: &mut Vec<u8>,
    pending: &mut Vec<usize>,
) -> bool {
    let s = k.s;
    let q = s / SUB;
    let b = k.bytes;
    if s < 2 * SUB || s % SUB != 0 || rows.len() != s || q * q > MAX_SUBS || b > 2 {
        return false;
    }
    // Whole window rows in 32-byte loads, or two 16-byte rows per load.
    if (s * b) % 32 != 0 && s * b != 16 {
        return false;
    }
    if b == 1 {
        large_t::<W8>(rows, out, nwin, k, stats, pending);
    } else {
        large_t::<W16>(rows, out, nwin, k, stats, pending);
    }
    true
}

/// The cell of `W::B` bytes at byte `at` of the stats planes.
#[inline(always)]
fn rd<W: Width>(stats: &[u8], at: usize) -> u32 {
    if W::B == 1 {
        stats[at] as u32
    } else {
        u16::from_le_bytes([stats[at], stats[at + 1]]) as u32
    }
}

#[target_feature(enable = "avx2")]
unsafe fn large_t<W: Width>(
    rows: &[&[u8]],
    out: *mut u8,
    nwin: usize,
    k: &Square,
    stats: &mut Vec<u8>,
    pending: &mut Vec<usize>,
) {
    let (s, b) = (k.s, W::B);
    let q = s / SUB;
    let g = SUB * b;
    // Windows per chunk: the stats pass and the counting pass of a chunk share its rows and
    // planes while they are in L1 (a pass over whole rows first left them in L2).
    let ch = CHUNK / (s * b);
    // Per band of 4 rows: four planes (mode, count, runner-up count, valid cells) of `plane`
    // bytes, sub-window `t` of the chunk at byte `t * g` of each.
    let plane = ch * q * g;
    stats.clear();
    stats.resize(q * 4 * plane, 0);
    pending.clear();
    let f = stats4(b, k.signed);
    let sign = if !k.signed {
        0
    } else if b == 1 {
        0x80
    } else {
        0x8000
    };
    let fill = k.fill.to_le_bytes();
    let full = (s * s) as u32;
    let mut cand = [0u16; MAX_SUBS];
    for c0 in (0..nwin).step_by(ch) {
        let n = ch.min(nwin - c0);
        let mut done = n * q;
        for band in 0..q {
            let st = stats.as_mut_ptr().add(band * 4 * plane);
            let rs: [&[u8]; SUB] = std::array::from_fn(|i| &rows[band * SUB + i][c0 * s * b..]);
            done = done.min(f(&rs, st, plane, n * q, k.fill, k.has_fill));
        }
        for wc in 0..n {
            let w = c0 + wc;
            if (wc + 1) * q > done {
                pending.push(w);
                continue;
            }
            let (mut valid, mut second, mut nc) = (0u32, 0u32, 0usize);
            for band in 0..q {
                let base = band * 4 * plane;
                for t in wc * q..(wc + 1) * q {
                    let at = base + t * g;
                    // No valid cell (count 0): no candidate, nothing to add.
                    if rd::<W>(stats, at + plane) == 0 {
                        continue;
                    }
                    valid += rd::<W>(stats, at + 3 * plane);
                    second += rd::<W>(stats, at + 2 * plane);
                    let v = rd::<W>(stats, at) as u16;
                    if !cand[..nc].contains(&v) {
                        cand[nc] = v;
                        nc += 1;
                    }
                }
            }
            let v = if valid == 0 || (!k.skipna && valid < full) {
                None
            } else {
                let (mut best, mut covered) = ((0u16, 0u32), 0u32);
                let mut decided = false;
                for grp in cand[..nc].chunks(GROUP) {
                    // A short last group repeats its last candidate; the repeats are not used.
                    let mut pats = [_mm256_setzero_si256(); GROUP];
                    for (i, p) in pats.iter_mut().enumerate() {
                        *p = W::splat(grp[i.min(grp.len() - 1)]);
                    }
                    let n = count_group::<W>(rows, w * s * b, s * b, &pats);
                    for (&c, &n) in grp.iter().zip(&n) {
                        covered += n;
                        if n > best.1 || (n == best.1 && (c ^ sign) < (best.0 ^ sign)) {
                            best = (c, n);
                        }
                    }
                    // Every value not counted yet (candidate or not) holds at most the rest.
                    if best.1 > valid - covered {
                        decided = true;
                        break;
                    }
                }
                if decided || best.1 > second {
                    Some(best.0)
                } else {
                    pending.push(w);
                    continue;
                }
            };
            let bytes = v.map_or(fill, |v| v.to_le_bytes());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(w * b), b);
        }
    }
}
