//! Fast path for float mean/sum over rows with contiguous last axis (the common DEM case).
//!
//! Same results as the generic `SumOp` path (f64 accumulation, same skip rules), but with
//! struct-of-arrays column buffers and branch-free loops the compiler vectorises. Each loop body
//! is `#[inline(always)]` and instantiated twice: once for the build target (what a generic
//! x86-64 wheel runs) and once inside a `#[target_feature(enable = "avx2")]` wrapper chosen at run
//! time, because a wheel cannot assume AVX2 but almost every machine that runs it has it.
use crate::dtype::Elem;
use crate::reduce::{Ax, RowKernel};
use ndarray::ArrayView1;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// Instruction set used by the fast path: `"avx2"` or `"generic"`. Setting the environment
/// variable `TOPOZARR_CORE_NO_SIMD` (to anything) before the first call forces `"generic"`, which
/// is how the benchmark measures what a machine without AVX2 would get.
pub fn simd_level() -> &'static str {
    static LEVEL: OnceLock<&'static str> = OnceLock::new();
    LEVEL.get_or_init(|| {
        if std::env::var_os("TOPOZARR_CORE_NO_SIMD").is_some() {
            return "generic";
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
        "generic"
    })
}

pub fn use_avx2() -> bool {
    simd_level() == "avx2"
}

/// f32 and f64.
pub trait FastFloat: Elem<Acc = f64, Sum = Self> {}
impl FastFloat for f32 {}
impl FastFloat for f64 {}

#[inline(always)]
pub(crate) fn valid<T: FastFloat>(x: T, fill: T) -> bool {
    // `x == x` is false only for NaN; `fill` is NaN when there is no fill value, so the second
    // comparison then never excludes anything.
    #[allow(clippy::eq_op)]
    let not_nan = x == x;
    not_nan && x != fill
}

#[inline(always)]
pub(crate) fn finish<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    s: f64,
    n: u32,
    full: u32,
    fill: T,
) -> T {
    if MEAN {
        let q = T::mean(s, n.max(1) as u64);
        if n == 0 || (!SKIP && n < full) {
            fill
        } else {
            q
        }
    } else if !SKIP && n < full {
        fill
    } else {
        // An all-missing window sums to 0 (s is 0.0 then).
        T::sum(s)
    }
}

/// 2x2 windows: two input rows, output `j` from columns `2j, 2j+1` of both.
#[inline(always)]
fn body_2x2<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    r0: &[T],
    r1: &[T],
    out: &mut [MaybeUninit<T>],
    fill: T,
) {
    let n = out.len();
    let (r0, r1) = (&r0[..2 * n], &r1[..2 * n]);
    for ((o, a), b) in out
        .iter_mut()
        .zip(r0.chunks_exact(2))
        .zip(r1.chunks_exact(2))
    {
        let (v0, v1, v2, v3) = (
            valid(a[0], fill),
            valid(a[1], fill),
            valid(b[0], fill),
            valid(b[1], fill),
        );
        let s = (if v0 { a[0].acc() } else { 0.0 } + if v1 { a[1].acc() } else { 0.0 })
            + (if v2 { b[0].acc() } else { 0.0 } + if v3 { b[1].acc() } else { 0.0 });
        let c = v0 as u32 + v1 as u32 + v2 as u32 + v3 as u32;
        *o = MaybeUninit::new(finish::<T, MEAN, SKIP>(s, c, 4, fill));
    }
}

/// Adds one input row into the column sums and counts (`first` overwrites instead).
#[inline(always)]
fn body_vertical<T: FastFloat>(r: &[T], sum: &mut [f64], cnt: &mut [u32], fill: T, first: bool) {
    let r = &r[..sum.len()];
    if first {
        for ((s, c), &x) in sum.iter_mut().zip(cnt.iter_mut()).zip(r) {
            let v = valid(x, fill);
            *s = if v { x.acc() } else { 0.0 };
            *c = v as u32;
        }
    } else {
        for ((s, c), &x) in sum.iter_mut().zip(cnt.iter_mut()).zip(r) {
            let v = valid(x, fill);
            *s += if v { x.acc() } else { 0.0 };
            *c += v as u32;
        }
    }
}

/// Merges column sums into windows of width 2 (`nrows` input rows each).
#[inline(always)]
fn body_horizontal2<T: FastFloat, const MEAN: bool, const SKIP: bool>(
    sum: &[f64],
    cnt: &[u32],
    out: &mut [MaybeUninit<T>],
    nrows: u32,
    fill: T,
) {
    for ((o, s), c) in out
        .iter_mut()
        .zip(sum.chunks_exact(2))
        .zip(cnt.chunks_exact(2))
    {
        *o = MaybeUninit::new(finish::<T, MEAN, SKIP>(
            s[0] + s[1],
            c[0] + c[1],
            2 * nrows,
            fill,
        ));
    }
}

macro_rules! dispatched {
    ($name:ident, $avx:ident, $body:ident, [$($g:ident : $gb:path),*] [$($cg:ident : $ct:ty),*], ($($arg:ident : $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx<$($g: $gb,)* $(const $cg: $ct),*>($($arg: $ty),*) {
            $body::<$($g,)* $($cg),*>($($arg),*)
        }
        #[inline]
        fn $name<$($g: $gb,)* $(const $cg: $ct),*>(avx2: bool, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: `avx2` is true only when the CPU reported AVX2 support (`simd_level`).
                return unsafe { $avx::<$($g,)* $($cg),*>($($arg),*) };
            }
            let _ = avx2;
            $body::<$($g,)* $($cg),*>($($arg),*)
        }
    };
}

// Shared with `fast_tile`'s loops.
pub(crate) use dispatched;

dispatched!(run_2x2, avx2_2x2, body_2x2, [T: FastFloat] [MEAN: bool, SKIP: bool],
    (r0: &[T], r1: &[T], out: &mut [MaybeUninit<T>], fill: T));
dispatched!(run_vertical, avx2_vertical, body_vertical, [T: FastFloat] [],
    (r: &[T], sum: &mut [f64], cnt: &mut [u32], fill: T, first: bool));
dispatched!(run_horizontal2, avx2_horizontal2, body_horizontal2, [T: FastFloat] [MEAN: bool, SKIP: bool],
    (sum: &[f64], cnt: &[u32], out: &mut [MaybeUninit<T>], nrows: u32, fill: T));

/// Float mean (`MEAN`) or sum, skipping missing cells (`SKIP`) or not.
pub struct FastSum<T, const MEAN: bool, const SKIP: bool> {
    /// The fill value, or NaN.
    pub fill: T,
    avx2: bool,
}

impl<T: FastFloat, const MEAN: bool, const SKIP: bool> FastSum<T, MEAN, SKIP> {
    pub fn new(fill: T) -> Self {
        FastSum {
            fill,
            avx2: use_avx2(),
        }
    }
}

/// Output columns per pass (column buffers of 12 bytes per input column stay in L1).
const CHUNK_COLS: usize = 1024;

#[derive(Default)]
pub struct Cols {
    sum: Vec<f64>,
    cnt: Vec<u32>,
}

impl<T: FastFloat, const MEAN: bool, const SKIP: bool> RowKernel<T> for FastSum<T, MEAN, SKIP> {
    type O = T;
    type Scratch = Cols;
    fn row(&self, sc: &mut Cols, rows: &[ArrayView1<'_, T>], ax: &Ax, out: &mut [MaybeUninit<T>]) {
        // Callers only choose this kernel when every row is contiguous (last-axis stride 1).
        let rows: Vec<&[T]> = rows
            .iter()
            .map(|r| r.as_slice().expect("contiguous row"))
            .collect();
        let fill = self.fill;
        let full_width = ax.p == 0 && out.len() * ax.s <= ax.n;
        if rows.len() == 2 && ax.s == 2 && full_width {
            return run_2x2::<T, MEAN, SKIP>(self.avx2, rows[0], rows[1], out, fill);
        }
        let per = (CHUNK_COLS / ax.s).max(1);
        let mut j0 = 0;
        while j0 < out.len() {
            let j1 = (j0 + per).min(out.len());
            let (c0, c1) = (ax.lo(j0), ax.hi(j1 - 1));
            sc.sum.resize(c1 - c0, 0.0);
            sc.cnt.resize(c1 - c0, 0);
            let (sum, cnt) = (&mut sc.sum[..c1 - c0], &mut sc.cnt[..c1 - c0]);
            if rows.is_empty() {
                sum.fill(0.0);
                cnt.fill(0);
            }
            for (i, r) in rows.iter().enumerate() {
                run_vertical::<T>(self.avx2, &r[c0..c1], sum, cnt, fill, i == 0);
            }
            let nrows = rows.len() as u32;
            let o = &mut out[j0..j1];
            if ax.s == 2 && full_width {
                run_horizontal2::<T, MEAN, SKIP>(self.avx2, sum, cnt, o, nrows, fill);
            } else {
                for (j, o) in (j0..j1).zip(o.iter_mut()) {
                    let (lo, hi) = (ax.lo(j) - c0, ax.hi(j) - c0);
                    let s: f64 = sum[lo..hi].iter().sum();
                    let c: u32 = cnt[lo..hi].iter().sum();
                    *o = MaybeUninit::new(finish::<T, MEAN, SKIP>(
                        s,
                        c,
                        nrows * (hi - lo) as u32,
                        fill,
                    ));
                }
            }
            j0 = j1;
        }
    }
}
