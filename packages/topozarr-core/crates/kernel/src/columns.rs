//! The struct-of-arrays native-cell kernel behind every method except the float mean/sum fast
//! path: max/min of any dtype, integer mean/sum, and the first level of `pyramid_tile` and of
//! each `Accumulator.fold`.
//!
//! The input rows under an output row are folded column by column into two flat buffers, a
//! value (running sum or extreme) and a valid-cell count. Those loops are plain selects over
//! contiguous slices, which the compiler vectorises (and, through `dispatched!`, again with AVX2
//! at run time). Rows that are not contiguous (strided or reversed views) are first copied into
//! a small scratch row, so there is one code path.
use crate::dtype::Elem;
use crate::fast::use_avx2;
use crate::reduce::{Ax, ExtOp, ExtState, Op, RowKernel, SumOp, SumState};
use ndarray::ArrayView1;
use std::mem::MaybeUninit;

/// An op whose partial state is a (value, count) pair that can be folded column-wise.
pub trait ColOp<T: Elem>: Op<T> {
    /// Per-column accumulator: a wide sum or the running extreme.
    type A: Copy + Send + Sync + Default + std::fmt::Debug;
    fn neutral(&self) -> Self::A;
    /// What one cell contributes (the neutral value when it is missing).
    fn lift(&self, x: T, valid: bool) -> Self::A;
    fn add(&self, a: Self::A, b: Self::A) -> Self::A;
    fn state(&self, a: Self::A, n: u32) -> Self::S;
}

impl<T: Elem, const MEAN: bool> ColOp<T> for SumOp<T, MEAN>
where
    SumOp<T, MEAN>: Op<T, S = SumState<T::Wide>>,
{
    type A = T::Wide;
    #[inline(always)]
    fn neutral(&self) -> T::Wide {
        T::Wide::default()
    }
    #[inline(always)]
    fn lift(&self, x: T, valid: bool) -> T::Wide {
        if valid {
            x.wide()
        } else {
            T::Wide::default()
        }
    }
    #[inline(always)]
    fn add(&self, a: T::Wide, b: T::Wide) -> T::Wide {
        a + b
    }
    #[inline(always)]
    fn state(&self, a: T::Wide, n: u32) -> SumState<T::Wide> {
        SumState { s: a, n }
    }
}

impl<T: Elem, const MAX: bool> ColOp<T> for ExtOp<T, MAX> {
    type A = T;
    #[inline(always)]
    fn neutral(&self) -> T {
        Self::neutral()
    }
    #[inline(always)]
    fn lift(&self, x: T, valid: bool) -> T {
        if valid {
            x
        } else {
            Self::neutral()
        }
    }
    #[inline(always)]
    fn add(&self, a: T, b: T) -> T {
        if Self::better(b, a) {
            b
        } else {
            a
        }
    }
    #[inline(always)]
    fn state(&self, a: T, n: u32) -> ExtState<T> {
        ExtState { v: a, n }
    }
}

#[inline(always)]
fn body_vertical<T: Elem, K: ColOp<T>>(
    op: &K,
    r: &[T],
    acc: &mut [K::A],
    cnt: &mut [u32],
    first: bool,
) {
    let r = &r[..acc.len()];
    let miss = op.miss();
    if first {
        for ((a, c), &x) in acc.iter_mut().zip(cnt.iter_mut()).zip(r) {
            let valid = !miss.is(x);
            *a = op.lift(x, valid);
            *c = valid as u32;
        }
    } else {
        for ((a, c), &x) in acc.iter_mut().zip(cnt.iter_mut()).zip(r) {
            let valid = !miss.is(x);
            *a = op.add(*a, op.lift(x, valid));
            *c += valid as u32;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_vertical<T: Elem, K: ColOp<T>>(
    op: &K,
    r: &[T],
    acc: &mut [K::A],
    cnt: &mut [u32],
    first: bool,
) {
    body_vertical(op, r, acc, cnt, first)
}

#[inline]
fn run_vertical<T: Elem, K: ColOp<T>>(
    avx2: bool,
    op: &K,
    r: &[T],
    acc: &mut [K::A],
    cnt: &mut [u32],
    first: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is true only when the CPU reported AVX2 support (`simd_level`).
        return unsafe { avx2_vertical(op, r, acc, cnt, first) };
    }
    let _ = avx2;
    body_vertical(op, r, acc, cnt, first)
}

/// Native cells to finished values (`STATE = false`) or to partial states (`STATE = true`).
pub struct Columns<'a, K, const STATE: bool> {
    pub op: &'a K,
    avx2: bool,
}

impl<'a, K, const STATE: bool> Columns<'a, K, STATE> {
    pub fn new(op: &'a K) -> Self {
        Columns {
            op,
            avx2: use_avx2(),
        }
    }
}

#[derive(Default)]
pub struct Scratch<A, T> {
    acc: Vec<A>,
    cnt: Vec<u32>,
    row: Vec<T>,
}

/// Output columns per pass, so the column buffers stay in L1/L2.
const CHUNK_COLS: usize = 2048;

#[inline(always)]
fn horizontal<T: Elem, K: ColOp<T>, O, const S: usize>(
    op: &K,
    acc: &[K::A],
    cnt: &[u32],
    out: &mut [MaybeUninit<O>],
    emit: &impl Fn(&K, K::A, u32) -> O,
) {
    for ((o, a), c) in out
        .iter_mut()
        .zip(acc.chunks_exact(S))
        .zip(cnt.chunks_exact(S))
    {
        let mut v = a[0];
        let mut n = c[0];
        for k in 1..S {
            v = op.add(v, a[k]);
            n += c[k];
        }
        *o = MaybeUninit::new(emit(op, v, n));
    }
}

/// One output row: fold the input rows column-wise, then merge each window's columns.
fn row_impl<T: Elem, K: ColOp<T>, O>(
    op: &K,
    avx2: bool,
    sc: &mut Scratch<K::A, T>,
    rows: &[ArrayView1<'_, T>],
    ax: &Ax,
    out: &mut [MaybeUninit<O>],
    emit: impl Fn(&K, K::A, u32) -> O,
) {
    {
        let per = (CHUNK_COLS / ax.s).max(1);
        let mut j0 = 0;
        while j0 < out.len() {
            let j1 = (j0 + per).min(out.len());
            let (c0, c1) = (ax.lo(j0), ax.hi(j1 - 1));
            let w = c1 - c0;
            sc.acc.resize(w, op.neutral());
            sc.cnt.resize(w, 0);
            let (acc, cnt) = (&mut sc.acc[..w], &mut sc.cnt[..w]);
            if rows.is_empty() {
                acc.fill(op.neutral());
                cnt.fill(0);
            }
            for (i, r) in rows.iter().enumerate() {
                let r = r.slice(ndarray::s![c0..c1]);
                let sl = match r.as_slice() {
                    Some(sl) => sl,
                    None => {
                        sc.row.clear();
                        sc.row.extend(r.iter().copied());
                        &sc.row[..]
                    }
                };
                run_vertical(avx2, op, sl, acc, cnt, i == 0);
            }
            let o = &mut out[j0..j1];
            if ax.p == 0 && j1 * ax.s <= ax.n {
                // Whole windows side by side: fixed-width chunks, no per-window bounds.
                match ax.s {
                    1 => horizontal::<T, K, O, 1>(op, acc, cnt, o, &emit),
                    2 => horizontal::<T, K, O, 2>(op, acc, cnt, o, &emit),
                    4 => horizontal::<T, K, O, 4>(op, acc, cnt, o, &emit),
                    s => {
                        for ((o, a), c) in o
                            .iter_mut()
                            .zip(acc.chunks_exact(s))
                            .zip(cnt.chunks_exact(s))
                        {
                            let v = a[1..].iter().fold(a[0], |x, &y| op.add(x, y));
                            *o = MaybeUninit::new(emit(op, v, c.iter().sum()));
                        }
                    }
                }
            } else {
                for (j, o) in (j0..j1).zip(o.iter_mut()) {
                    let (lo, hi) = (ax.lo(j) - c0, ax.hi(j) - c0);
                    let v = acc[lo + 1..hi].iter().fold(acc[lo], |x, &y| op.add(x, y));
                    *o = MaybeUninit::new(emit(op, v, cnt[lo..hi].iter().sum()));
                }
            }
            j0 = j1;
        }
    }
}

impl<'a, T: Elem, K: ColOp<T>> RowKernel<T> for Columns<'a, K, false> {
    type O = K::Out;
    type Scratch = Scratch<K::A, T>;
    fn row(
        &self,
        sc: &mut Self::Scratch,
        rows: &[ArrayView1<'_, T>],
        ax: &Ax,
        out: &mut [MaybeUninit<K::Out>],
    ) {
        row_impl(self.op, self.avx2, sc, rows, ax, out, |op, a, n| {
            op.finish(&op.state(a, n))
        })
    }
}

impl<'a, T: Elem, K: ColOp<T>> RowKernel<T> for Columns<'a, K, true> {
    type O = K::S;
    type Scratch = Scratch<K::A, T>;
    fn row(
        &self,
        sc: &mut Self::Scratch,
        rows: &[ArrayView1<'_, T>],
        ax: &Ax,
        out: &mut [MaybeUninit<K::S>],
    ) {
        row_impl(self.op, self.avx2, sc, rows, ax, out, |op, a, n| {
            op.state(a, n)
        })
    }
}
