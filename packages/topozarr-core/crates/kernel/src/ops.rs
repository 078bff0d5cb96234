//! The per-window operators: a `Fold` merges input cells (or partial states) into a window's
//! state and an `Op` finishes it: sum/mean (`SumOp`), max/min (`ExtOp`), nearest (`NearestOp`),
//! plus the `Method` names. `reduce.rs` drives them over window geometry; `mode` has its own
//! kernels (`mode*.rs`).
use crate::dtype::{Bytes, Elem, Missing};
use crate::error::{KernelError, Result};
pub use crate::methods::{Method, METHODS};

impl std::str::FromStr for Method {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self> {
        Method::from_name(s).ok_or_else(|| KernelError::UnknownMethod(s.to_string()))
    }
}

/// Folding values of type `X` into partial window states.
pub trait Fold<X>: Sync {
    type S: Copy + Send + Sync + std::fmt::Debug + Default + StateBytes;
    fn empty(&self) -> Self::S;
    fn push(&self, s: &mut Self::S, x: X);
    /// Combines two partial states; `o` covers cells that come after those of `s` in row-major
    /// order (which is what makes `nearest` keep the top-left cell).
    fn merge(&self, s: &mut Self::S, o: &Self::S);
}

/// A partial window state as fixed-size bytes (`Accumulator::export_states` and
/// `merge_states`: partials computed in one process and merged in another).
pub trait StateBytes: Copy {
    const SIZE: usize;
    fn put(&self, out: &mut Vec<u8>);
    /// The state of exactly `SIZE` bytes.
    fn get(b: &[u8]) -> Self;
}

/// `StateBytes` for a two-field state: its value field's bytes, then its flag field's.
macro_rules! state_bytes {
    ($state:ident<$t:ident>, $value:ident: $vt:ident, $flag:ident: $ft:ty) => {
        impl<$t: Bytes> StateBytes for $state<$t> {
            const SIZE: usize = $vt::SIZE + <$ft as Bytes>::SIZE;
            fn put(&self, out: &mut Vec<u8>) {
                self.$value.put(out);
                self.$flag.put(out);
            }
            fn get(b: &[u8]) -> Self {
                $state {
                    $value: $vt::get(&b[..$vt::SIZE]),
                    $flag: <$ft as Bytes>::get(&b[$vt::SIZE..]),
                }
            }
        }
    };
}

state_bytes!(SumState<A>, s: A, n: u32);
state_bytes!(ExtState<T>, v: T, n: u32);
state_bytes!(NearState<T>, v: T, has: bool);

/// A reduction of native cells of type `T`: a fold plus how a finished window is reported.
pub trait Op<T: Elem>: Fold<T> + Copy + Send {
    type Out: Copy
        + Send
        + Sync
        + std::fmt::Debug
        + PartialEq
        + Default
        + 'static
        + crate::any::IntoAny;
    fn finish(&self, s: &Self::S) -> Self::Out;
    /// The same op for windows of `full` cells (what `skipna=False` compares counts against).
    fn with_full(self, full: u32) -> Self;
    /// How missing cells are recognised.
    fn miss(&self) -> Missing<T>;
}

/// Sum and count of the valid cells. A window is incomplete (some cell missing, which
/// `skipna=False` turns into a missing window) when its count is below the op's `full` cell
/// count, so no separate flag is stored: the state stays 16 bytes for floats.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SumState<A> {
    pub s: A,
    pub n: u32,
}

/// mean (`MEAN = true`) or sum. `full` is the number of cells in a whole window.
#[derive(Debug, Clone, Copy)]
pub struct SumOp<T, const MEAN: bool> {
    pub miss: Missing<T>,
    pub skipna: bool,
    pub full: u32,
}

impl<T: Elem, const MEAN: bool> SumOp<T, MEAN> {
    pub fn new(miss: Missing<T>, skipna: bool) -> Self {
        SumOp {
            miss,
            skipna,
            full: 0,
        }
    }
}

impl<T: Elem, const MEAN: bool> Fold<T> for SumOp<T, MEAN> {
    // The narrowest exact accumulator (i64 for integers of up to 16 bits): states stay small.
    type S = SumState<T::Wide>;
    #[inline(always)]
    fn empty(&self) -> Self::S {
        SumState {
            s: T::Wide::default(),
            n: 0,
        }
    }
    #[inline(always)]
    fn push(&self, st: &mut Self::S, x: T) {
        // Selects rather than branches: missing cells are scattered at random in real rasters.
        let missing = self.miss.is(x);
        st.s += if missing {
            T::Wide::default()
        } else {
            x.wide()
        };
        st.n += (!missing) as u32;
    }
    #[inline(always)]
    fn merge(&self, st: &mut Self::S, o: &Self::S) {
        st.s += o.s;
        st.n += o.n;
    }
}

impl<T: Elem> Op<T> for SumOp<T, true> {
    type Out = T;
    #[inline(always)]
    fn finish(&self, st: &Self::S) -> T {
        if st.n == 0 || (st.n < self.full && !self.skipna) {
            self.miss.fill()
        } else {
            T::mean_wide(st.s, st.n)
        }
    }
    fn with_full(mut self, full: u32) -> Self {
        self.full = full;
        self
    }
    #[inline(always)]
    fn miss(&self) -> Missing<T> {
        self.miss
    }
}

impl<T: Elem> Op<T> for SumOp<T, false> {
    type Out = T::Sum;
    #[inline(always)]
    fn finish(&self, st: &Self::S) -> T::Sum {
        if st.n < self.full && !self.skipna {
            self.miss.fill().to_sum()
        } else if st.n == 0 {
            T::sum_zero()
        } else {
            T::sum(T::wide_acc(st.s))
        }
    }
    fn with_full(mut self, full: u32) -> Self {
        self.full = full;
        self
    }
    #[inline(always)]
    fn miss(&self) -> Missing<T> {
        self.miss
    }
}

/// Running extreme of the valid cells (`v` starts at the type's lowest/highest value, so the
/// update is a plain select) and their count (complete windows have `n == full`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExtState<T> {
    pub v: T,
    pub n: u32,
}

/// max (`MAX = true`) or min.
#[derive(Debug, Clone, Copy)]
pub struct ExtOp<T, const MAX: bool> {
    pub miss: Missing<T>,
    pub skipna: bool,
    pub full: u32,
}

impl<T: Elem, const MAX: bool> ExtOp<T, MAX> {
    pub fn new(miss: Missing<T>, skipna: bool) -> Self {
        ExtOp {
            miss,
            skipna,
            full: 0,
        }
    }
    #[inline(always)]
    pub fn better(x: T, v: T) -> bool {
        if MAX {
            x > v
        } else {
            x < v
        }
    }
    #[inline(always)]
    pub fn neutral() -> T {
        if MAX {
            T::LOWEST
        } else {
            T::HIGHEST
        }
    }
}

impl<T: Elem, const MAX: bool> Fold<T> for ExtOp<T, MAX> {
    type S = ExtState<T>;
    #[inline(always)]
    fn empty(&self) -> Self::S {
        ExtState {
            v: Self::neutral(),
            n: 0,
        }
    }
    #[inline(always)]
    fn push(&self, s: &mut Self::S, x: T) {
        let missing = self.miss.is(x);
        s.v = if !missing && Self::better(x, s.v) {
            x
        } else {
            s.v
        };
        s.n += (!missing) as u32;
    }
    #[inline(always)]
    fn merge(&self, s: &mut Self::S, o: &Self::S) {
        // An empty partial holds the neutral start value, so it never wins the comparison.
        s.v = if Self::better(o.v, s.v) { o.v } else { s.v };
        s.n += o.n;
    }
}

impl<T: Elem, const MAX: bool> Op<T> for ExtOp<T, MAX> {
    type Out = T;
    #[inline(always)]
    fn finish(&self, s: &Self::S) -> T {
        if s.n == 0 || (s.n < self.full && !self.skipna) {
            self.miss.fill()
        } else {
            s.v
        }
    }
    fn with_full(mut self, full: u32) -> Self {
        self.full = full;
        self
    }
    #[inline(always)]
    fn miss(&self) -> Missing<T> {
        self.miss
    }
}

/// The first (top-left) cell of the window; missing values are not skipped.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NearState<T> {
    pub v: T,
    pub has: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct NearestOp<T> {
    pub miss: Missing<T>,
}

impl<T: Elem> Fold<T> for NearestOp<T> {
    type S = NearState<T>;
    #[inline(always)]
    fn empty(&self) -> Self::S {
        NearState {
            v: self.miss.fill(),
            has: false,
        }
    }
    #[inline(always)]
    fn push(&self, s: &mut Self::S, x: T) {
        if !s.has {
            s.v = x;
            s.has = true;
        }
    }
    #[inline(always)]
    fn merge(&self, s: &mut Self::S, o: &Self::S) {
        if !s.has {
            *s = *o;
        }
    }
}

impl<T: Elem> Op<T> for NearestOp<T> {
    type Out = T;
    #[inline(always)]
    fn finish(&self, s: &Self::S) -> T {
        // Only a window that no cell reached (an Accumulator region never folded) lacks a value.
        if s.has {
            s.v
        } else {
            self.miss.fill()
        }
    }
    fn with_full(self, _full: u32) -> Self {
        self
    }
    #[inline(always)]
    fn miss(&self) -> Missing<T> {
        self.miss
    }
}

/// Folding partial states into coarser partial states (pyramid levels built from the previous
/// level's partials).
pub struct StateFold<'a, F, X>(pub &'a F, pub std::marker::PhantomData<fn(X)>);

impl<'a, X, F: Fold<X>> Fold<F::S> for StateFold<'a, F, X> {
    type S = F::S;
    #[inline(always)]
    fn empty(&self) -> F::S {
        self.0.empty()
    }
    #[inline(always)]
    fn push(&self, s: &mut F::S, x: F::S) {
        self.0.merge(s, &x)
    }
    #[inline(always)]
    fn merge(&self, s: &mut F::S, o: &F::S) {
        self.0.merge(s, o)
    }
}
