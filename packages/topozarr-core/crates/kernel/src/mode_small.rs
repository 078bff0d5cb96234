//! Whole-window `mode` kernels over contiguous rows, where a counting table per window would
//! cost more than the window itself: 2x2 (the pyramid's per-level step), windows of up to
//! [`SMALL`] cells (pairwise counts the compiler vectorises), and the typed entry points of
//! the AVX2 kernels of [`crate::mode_avx2`] for one- and two-byte integers (square 4x4 and 8x8
//! windows; larger square ones through a bound).
use crate::dtype::{Elem, Missing};
use std::mem::MaybeUninit;

/// Square windows (4x4, 8x8) of one- and two-byte integers with the AVX2 kernel of
/// [`crate::mode_avx2`], when the CPU has it: returns how many windows of `out` (from the
/// first) it did; the caller does the rest (all of them without AVX2 or for other types).
pub fn mode_square_simd<T: Elem>(
    rows: &[&[T]],
    s: usize,
    out: &mut [MaybeUninit<T>],
    miss: Missing<T>,
    skipna: bool,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let Some((k, bytes_rows)) = erase(rows, s, out.len(), miss, skipna) else {
            return 0;
        };
        // SAFETY: AVX2 was detected and the rows checked by `erase`; `out` has `out.len()`
        // cells of `k.bytes` bytes, written (never read) through the pointer.
        unsafe { crate::mode_avx2::square(&bytes_rows, out.as_mut_ptr() as *mut u8, out.len(), &k) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, s, out, miss, skipna);
        0
    }
}

/// Scratch of [`mode_large_simd`].
#[derive(Default)]
pub struct LargeScratch {
    #[cfg(target_arch = "x86_64")]
    stats: Vec<u8>,
    /// Windows left to the caller (indices into the output row).
    pub pending: Vec<usize>,
}

/// Square windows of 8x8 (two-byte cells) to 32x32 cells (side a multiple of 4) of one- and two-byte
/// integers with AVX2 through the bound of [`crate::mode_large::large`]: returns false when it
/// does not apply (then nothing was written); otherwise every window of `out` is done except
/// those in `sc.pending`.
pub fn mode_large_simd<T: Elem>(
    rows: &[&[T]],
    s: usize,
    out: &mut [MaybeUninit<T>],
    miss: Missing<T>,
    skipna: bool,
    sc: &mut LargeScratch,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let Some((k, bytes_rows)) = erase(rows, s, out.len(), miss, skipna) else {
            return false;
        };
        // SAFETY: as in `mode_square_simd`.
        unsafe {
            crate::mode_large::large(
                &bytes_rows,
                out.as_mut_ptr() as *mut u8,
                out.len(),
                &k,
                &mut sc.stats,
                &mut sc.pending,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, s, out, miss, skipna, sc);
        false
    }
}

/// The byte view of rows of a one- or two-byte integer type and the kernel parameters, when
/// the AVX2 kernels apply (AVX2 present, rows long enough for `nwin` windows of side `s`).
#[cfg(target_arch = "x86_64")]
fn erase<'a, T: Elem>(
    rows: &[&'a [T]],
    s: usize,
    nwin: usize,
    miss: Missing<T>,
    skipna: bool,
) -> Option<(crate::mode_avx2::Square, Vec<&'a [u8]>)> {
    let bytes = std::mem::size_of::<T>();
    if T::IS_FLOAT || bytes > 2 || !crate::fast::use_avx2() {
        return None;
    }
    if rows.iter().any(|r| r.len() < nwin * s) {
        return None;
    }
    let k = crate::mode_avx2::Square {
        bytes,
        signed: T::LOWEST < T::default(),
        s,
        fill: key(miss.fill()) as u16,
        has_fill: miss.has_fill,
        skipna,
    };
    let bytes_rows = rows
        .iter()
        // SAFETY: T is a plain 1- or 2-byte integer here; the byte view covers the same memory.
        .map(|r| unsafe {
            std::slice::from_raw_parts(r.as_ptr() as *const u8, std::mem::size_of_val(*r))
        })
        .collect();
    Some((k, bytes_rows))
}

/// The bit pattern of a one- or two-byte integer.
#[inline(always)]
pub fn key<T: Elem>(x: T) -> usize {
    debug_assert!(!T::IS_FLOAT && std::mem::size_of::<T>() <= 2);
    // SAFETY: only called for plain 1- or 2-byte integers.
    match std::mem::size_of::<T>() {
        1 => unsafe { std::mem::transmute_copy::<T, u8>(&x) as usize },
        _ => unsafe { std::mem::transmute_copy::<T, u16>(&x) as usize },
    }
}

/// Output cells per batch of the 2x2 kernel (deinterleaved into stack arrays first, so the
/// selection loop is branch-free over plain arrays and the compiler vectorises it).
const BATCH: usize = 64;

/// 2x2 mode of rows `r0`, `r1` into `out` (`out.len() * 2 <= r0.len()`).
pub fn mode_2x2<T: Elem>(
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
pub const SMALL: usize = 16;

/// Mode of whole windows of at most [`SMALL`] cells (`rows.len() * s`) over contiguous rows:
/// windows are gathered in batches of [`BATCH`] into cell-major stack arrays, then every cell's
/// count is the number of equal valid cells, all in branch-free loops over the batch that the
/// compiler vectorises (no counting table, so no store-to-load chains on repeated classes).
#[allow(clippy::needless_range_loop)]
pub fn mode_small<T: Elem>(
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
                // A valid cell never equals a missing one (NaN equals nothing; the fill
                // value is not valid), so only the counted cell's own validity matters.
                for j in 0..BATCH {
                    cnt[j] += (x[k][j] == x[i][j]) as u8;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::any::{AnyArray, AnyView};
    use crate::api::block_reduce;
    use crate::dtype::{Elem, FillValue};
    use ndarray::{ArrayD, IxDyn};
    use std::time::Instant;

    /// A deterministic class map like `benchmarks/kernel.py`'s: 8x8 blocks of one class out of
    /// `classes`, 30% of the cells re-drawn (splitmix64, so no RNG dependency).
    fn class_map<T: Elem>(bytes: usize, classes: u64, conv: fn(u64) -> T) -> ArrayD<T> {
        let side = ((bytes / std::mem::size_of::<T>()) as f64).sqrt() as usize / 8 * 8;
        let mut state = 7u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let blocks: Vec<u64> = (0..(side / 8) * (side / 8))
            .map(|_| next() % classes)
            .collect();
        ArrayD::from_shape_fn(IxDyn(&[side, side]), |ix| {
            let r = next();
            let v = if r % 10 < 3 {
                (r >> 8) % classes
            } else {
                blocks[(ix[0] / 8) * (side / 8) + ix[1] / 8]
            };
            conv(v)
        })
    }

    /// Reference mode of `s x s` windows (strict trim) by counting in a BTreeMap.
    fn reference(a: &ArrayD<i64>, s: usize, fill: Option<i64>, skipna: bool) -> Vec<i64> {
        let (h, w) = (a.shape()[0], a.shape()[1]);
        let mut out = Vec::new();
        for i in 0..h / s {
            for j in 0..w / s {
                let mut m = std::collections::BTreeMap::new();
                let mut missing = false;
                for r in i * s..(i + 1) * s {
                    for c in j * s..(j + 1) * s {
                        let x = a[[r, c]];
                        if Some(x) == fill {
                            missing = true;
                        } else {
                            *m.entry(x).or_insert(0) += 1;
                        }
                    }
                }
                let mut best: Option<(i64, i32)> = None;
                for (&x, &c) in &m {
                    if best.is_none_or(|(_, bc)| c > bc) {
                        best = Some((x, c));
                    }
                }
                out.push(match best {
                    Some((x, _)) if skipna || !missing => x,
                    _ => fill.unwrap_or(0),
                });
            }
        }
        out
    }

    /// Every SIMD and fallback path of square windows against the reference: 1- and 2-byte,
    /// signed and unsigned, widths that leave partial vectors, blocky and noisy maps, the fill
    /// value as a class, `skipna` both ways.
    #[test]
    fn square_windows_match_reference() {
        fn check<'a, T: Elem + Into<i64>>(a: &'a ArrayD<T>, label: &str)
        where
            AnyView<'a>: From<ndarray::ArrayViewD<'a, T>>,
        {
            let wide = a.mapv(|x| x.into());
            let fill = wide[[0, 0]];
            for s in [2usize, 3, 4, 8, 16, 32] {
                for (f, skipna) in [(None, true), (Some(fill), true), (Some(fill), false)] {
                    let got = block_reduce(
                        a.view().into(),
                        &[s as i64, s as i64],
                        "mode",
                        f.map(|v| FillValue::Int(v as i128)),
                        skipna,
                    )
                    .unwrap();
                    let got: Vec<i64> = match got {
                        AnyArray::U8(g) => g.iter().map(|&x| x as i64).collect(),
                        AnyArray::I8(g) => g.iter().map(|&x| x as i64).collect(),
                        AnyArray::U16(g) => g.iter().map(|&x| x as i64).collect(),
                        AnyArray::I16(g) => g.iter().map(|&x| x as i64).collect(),
                        _ => panic!("dtype"),
                    };
                    assert_eq!(
                        got,
                        reference(&wide, s, f, skipna),
                        "{label} {s}x{s} fill={f:?} skipna={skipna}"
                    );
                }
            }
        }
        let mut state = 3u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (h, w) in [(67, 301), (64, 96)] {
            for classes in [3i64, 7, 300] {
                let noise: Vec<u64> = (0..h * w).map(|_| next()).collect();
                let cell = |ix: IxDyn| {
                    let r = noise[ix[0] * w + ix[1]];
                    if r % 10 < 4 {
                        (r >> 8) as i64 % classes
                    } else {
                        ((ix[0] / 5 * 31 + ix[1] / 6 * 17) as i64) % classes
                    }
                };
                let a = ArrayD::from_shape_fn(IxDyn(&[h, w]), cell);
                let l = format!("{h}x{w} {classes} classes");
                check(&a.mapv(|x| x as u8), &format!("u8 {l}"));
                check(&a.mapv(|x| (x - 1) as i8), &format!("i8 {l}"));
                check(&a.mapv(|x| (x * 211) as u16), &format!("u16 {l}"));
                check(&a.mapv(|x| (x * 97 - 400) as i16), &format!("i16 {l}"));
            }
        }
    }

    /// The large-window bound answers a blocky window itself and leaves an undecidable one
    /// (every value about equally frequent) to the caller.
    #[test]
    fn large_bound_decides_or_defers() {
        if !crate::fast::use_avx2() {
            return;
        }
        let run = |cell: &dyn Fn(usize, usize) -> u8| {
            let rows: Vec<Vec<u8>> = (0..16)
                .map(|r| (0..64).map(|c| cell(r, c)).collect())
                .collect();
            let sl: Vec<&[u8]> = rows.iter().map(|r| r.as_slice()).collect();
            let mut out = vec![MaybeUninit::<u8>::uninit(); 4];
            let mut sc = LargeScratch::default();
            assert!(mode_large_simd(
                &sl,
                16,
                &mut out,
                Missing::new(None),
                true,
                &mut sc
            ));
            let got: Vec<Option<u8>> = (0..4)
                .map(|w| (!sc.pending.contains(&w)).then(|| unsafe { out[w].assume_init() }))
                .collect();
            got
        };
        let blocky = |r: usize, c: usize| {
            if (r * 7 + c * 3) % 11 == 0 {
                r as u8
            } else {
                5
            }
        };
        assert_eq!(run(&blocky), vec![Some(5); 4]);
        let spread = |r: usize, c: usize| ((r * 64 + c) % 256) as u8;
        assert_eq!(run(&spread), vec![None; 4]);
    }

    fn best_of(f: impl Fn()) -> f64 {
        f();
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// How the small-window kernels were measured: time(mode) / time(mean) on a 64 MiB class
    /// map, all threads. Run with
    /// `cargo test --release --lib -- --ignored --nocapture mode_vs_mean_timing`.
    #[test]
    #[ignore]
    fn mode_vs_mean_timing() {
        fn run<'a, T: Elem>(name: &str, classes: u64, a: &'a ArrayD<T>)
        where
            AnyView<'a>: From<ndarray::ArrayViewD<'a, T>>,
        {
            for s in [2i64, 4, 8, 16, 32] {
                let go = |m: &str| {
                    best_of(|| {
                        block_reduce(a.view().into(), &[s, s], m, None, true).unwrap();
                    })
                };
                let (mean, mode) = (go("mean"), go("mode"));
                let gb = (a.len() * std::mem::size_of::<T>()) as f64 / 1e9;
                println!(
                    "{name:<6} {classes:>5} classes {s:>2}x{s:<2}: mean {:6.2} GB/s  mode {:6.2} GB/s  mode/mean {:5.2}x",
                    gb / mean,
                    gb / mode,
                    mode / mean
                );
            }
        }
        let mib = 64 << 20;
        for classes in [8, 256] {
            run("uint8", classes, &class_map(mib, classes, |v| v as u8));
        }
        for classes in [256, 65536] {
            run("uint16", classes, &class_map(mib, classes, |v| v as u16));
        }
    }
}
