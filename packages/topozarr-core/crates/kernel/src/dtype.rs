//! Element types the kernel reduces and how each one accumulates, rounds and saturates.
use crate::error::{KernelError, Result};
use std::fmt::Debug;
use std::ops::AddAssign;

/// A value as fixed-size little-endian bytes: partial window states cross processes this way
/// (the cluster writer's partials), whatever the machine's byte order.
pub trait Bytes: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    /// The value of exactly `SIZE` bytes.
    fn get(b: &[u8]) -> Self;
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl Bytes for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("SIZE bytes"))
            }
        }
    )*};
}
le_bytes!(u8, i8, u16, i16, u32, i32, u64, i64, i128, f32, f64);

impl Bytes for bool {
    const SIZE: usize = 1;
    #[inline]
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    #[inline]
    fn get(b: &[u8]) -> Self {
        b[0] != 0
    }
}

/// A `fill_value` as it arrived from Python, before it is checked against a dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FillValue {
    Int(i128),
    Float(f64),
}

impl std::fmt::Display for FillValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillValue::Int(v) => write!(f, "{v}"),
            // Spelled as Python prints floats, since that is what the caller passed.
            FillValue::Float(v) if v.is_nan() => f.write_str("nan"),
            FillValue::Float(v) if v.is_infinite() => {
                f.write_str(if *v > 0.0 { "inf" } else { "-inf" })
            }
            FillValue::Float(v) => write!(f, "{v:?}"),
        }
    }
}

/// Output element of `sum` (numpy's `np.sum` promotion: floats keep their type, signed integers
/// go to int64, unsigned ones to uint64).
pub trait SumOut:
    Copy + Send + Sync + Debug + PartialEq + Default + 'static + crate::any::IntoAny
{
    /// numpy's name for this sum dtype.
    const NAME: &'static str;
}
impl SumOut for f32 {
    const NAME: &'static str = "float32";
}
impl SumOut for f64 {
    const NAME: &'static str = "float64";
}
impl SumOut for i64 {
    const NAME: &'static str = "int64";
}
impl SumOut for u64 {
    const NAME: &'static str = "uint64";
}

/// One supported element type.
pub trait Elem:
    Copy + Send + Sync + Debug + PartialOrd + Default + 'static + crate::any::IntoAny + Bytes
{
    const NAME: &'static str;
    const IS_FLOAT: bool;
    /// Smallest and largest value (infinities for floats): the neutral starts of max and min.
    const LOWEST: Self;
    const HIGHEST: Self;
    /// Exact accumulator: f64 for floats, i128 for integers (cannot overflow for any array that
    /// fits in memory).
    type Acc: Copy + Send + Sync + Debug + PartialEq + Default + AddAssign;
    /// Column accumulator of the vectorised kernels: i64 for integers of up to 16 bits (exact
    /// for any u32 cell count), otherwise the same as `Acc`.
    type Wide: Copy
        + Send
        + Sync
        + Debug
        + Default
        + PartialEq
        + AddAssign
        + Bytes
        + std::ops::Add<Output = Self::Wide>;
    fn wide(self) -> Self::Wide;
    fn wide_acc(w: Self::Wide) -> Self::Acc;
    /// `mean` of a `Wide` sum (`n > 0`).
    #[inline(always)]
    fn mean_wide(s: Self::Wide, n: u32) -> Self {
        Self::mean(Self::wide_acc(s), n as u64)
    }
    type Sum: SumOut;
    fn is_nan(self) -> bool;
    fn acc(self) -> Self::Acc;
    /// Mean of `n > 0` values whose exact sum is `s`. Integers round half to even.
    fn mean(s: Self::Acc, n: u64) -> Self;
    /// `s` in the sum's output dtype; integers saturate at the int64/uint64 bounds.
    fn sum(s: Self::Acc) -> Self::Sum;
    /// A fill value (already of this dtype) in the sum's output dtype (always exact).
    fn to_sum(self) -> Self::Sum;
    fn sum_zero() -> Self::Sum;
    /// NaN for floats; integers have no NaN and use 0 where nothing else is defined.
    fn nan_or_zero() -> Self;
    /// Checks that `v` is exactly representable in this dtype.
    fn from_fill(v: FillValue) -> Result<Self>;
}

/// Exact integer mean rounded half to even (floor division, then compare twice the remainder).
#[inline]
pub fn round_half_even(s: i128, n: u64) -> i128 {
    // Integer division is slow (a library call for 128 bits, ~40 cycles for 64); below 2^52 a
    // float64 quotient is within one of the exact one, and an exact remainder corrects it.
    if s.unsigned_abs() < (1u128 << 52) && n < (1u64 << 52) {
        let (s, n) = (s as i64, n as i64);
        // Truncation (one instruction; `floor` is a libm call on baseline x86-64) is within one
        // of the floor too; the loops run at most once or twice.
        let mut q = (s as f64 / n as f64) as i64;
        let mut r = s - q * n;
        while r < 0 {
            q -= 1;
            r += n;
        }
        while r >= n {
            q += 1;
            r -= n;
        }
        return match (2 * r).cmp(&n) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
        } as i128;
    }
    let n = n as i128;
    let q = s.div_euclid(n);
    let r = s.rem_euclid(n);
    match (2 * r).cmp(&n) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

macro_rules! int_elem {
    ($t:ty, $name:literal, $sum:ty, $wide:ty, $small:literal) => {
        impl Elem for $t {
            const NAME: &'static str = $name;
            const IS_FLOAT: bool = false;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            type Acc = i128;
            type Wide = $wide;
            type Sum = $sum;
            #[inline(always)]
            fn wide(self) -> $wide {
                self as $wide
            }
            #[inline(always)]
            fn wide_acc(w: $wide) -> i128 {
                w as i128
            }
            #[inline(always)]
            fn mean_wide(s: $wide, n: u32) -> Self {
                if $small {
                    // Values below 2^16: the sum (< 2^48) and the quotient are exact enough in
                    // float64 that a non-half quotient can never round onto a half, and adding
                    // then subtracting 1.5 * 2^52 rounds half to even in one branch-free step
                    // (vectorisable; `round_ties_even` is a libm call on baseline x86-64).
                    const MAGIC: f64 = 6_755_399_441_055_744.0;
                    let q = s as f64 / n as f64;
                    ((q + MAGIC) - MAGIC) as $t
                } else {
                    Self::mean(s as i128, n as u64)
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
            #[inline(always)]
            fn acc(self) -> i128 {
                self as i128
            }
            #[inline]
            fn mean(s: i128, n: u64) -> Self {
                // The mean of values of this type lies within its range, so the cast is exact.
                round_half_even(s, n) as $t
            }
            #[inline]
            fn sum(s: i128) -> $sum {
                s.clamp(<$sum>::MIN as i128, <$sum>::MAX as i128) as $sum
            }
            #[inline]
            fn to_sum(self) -> $sum {
                self as $sum
            }
            #[inline]
            fn sum_zero() -> $sum {
                0
            }
            #[inline]
            fn nan_or_zero() -> Self {
                0
            }
            fn from_fill(v: FillValue) -> Result<Self> {
                let bad = |why| KernelError::BadFill {
                    value: v.to_string(),
                    dtype: $name,
                    why,
                };
                let i = match v {
                    FillValue::Int(i) => i,
                    FillValue::Float(f) if f.is_nan() => {
                        return Err(bad("integer dtypes have no NaN"))
                    }
                    FillValue::Float(f) if f.fract() != 0.0 || !f.is_finite() => {
                        return Err(bad("not an integer"))
                    }
                    // Integral floats within i128 convert exactly; out-of-range ones fail below.
                    FillValue::Float(f) if f.abs() < 1e38 => f as i128,
                    FillValue::Float(_) => return Err(bad("out of range")),
                };
                <$t>::try_from(i).map_err(|_| bad("out of range"))
            }
        }
    };
}

int_elem!(u8, "uint8", u64, i64, true);
int_elem!(i8, "int8", i64, i64, true);
int_elem!(u16, "uint16", u64, i64, true);
int_elem!(i16, "int16", i64, i64, true);
int_elem!(u32, "uint32", u64, i128, false);
int_elem!(i32, "int32", i64, i128, false);
int_elem!(u64, "uint64", u64, i128, false);
int_elem!(i64, "int64", i64, i128, false);

macro_rules! float_elem {
    ($t:ty, $name:literal) => {
        impl Elem for $t {
            const NAME: &'static str = $name;
            const IS_FLOAT: bool = true;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            type Acc = f64;
            type Wide = f64;
            type Sum = $t;
            #[inline(always)]
            fn wide(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn wide_acc(w: f64) -> f64 {
                w
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                self.is_nan()
            }
            #[inline(always)]
            fn acc(self) -> f64 {
                self as f64
            }
            #[inline]
            fn mean(s: f64, n: u64) -> Self {
                (s / n as f64) as $t
            }
            #[inline]
            fn sum(s: f64) -> $t {
                s as $t
            }
            #[inline]
            fn to_sum(self) -> $t {
                self
            }
            #[inline]
            fn sum_zero() -> $t {
                0.0
            }
            #[inline]
            fn nan_or_zero() -> Self {
                <$t>::NAN
            }
            fn from_fill(v: FillValue) -> Result<Self> {
                let bad = |why| KernelError::BadFill {
                    value: v.to_string(),
                    dtype: $name,
                    why,
                };
                match v {
                    FillValue::Float(f) if f.is_nan() => Ok(<$t>::NAN),
                    FillValue::Float(f) => {
                        let t = f as $t;
                        if t as f64 == f {
                            Ok(t)
                        } else {
                            Err(bad("it would be rounded"))
                        }
                    }
                    FillValue::Int(i) => {
                        let t = i as $t;
                        if t.is_finite() && t as i128 == i {
                            Ok(t)
                        } else {
                            Err(bad("it would be rounded"))
                        }
                    }
                }
            }
        }
    };
}

float_elem!(f32, "float32");
float_elem!(f64, "float64");

/// How a cell is recognised as missing: NaN (floats) or equal to the fill value.
#[derive(Debug, Clone, Copy)]
pub struct Missing<T> {
    /// The fill value, or NaN for floats without one (NaN never compares equal, so floats need
    /// no extra flag), or an unused 0 for integers without one.
    pub fill: T,
    pub has_fill: bool,
}

impl<T: Elem> Missing<T> {
    pub fn new(fill: Option<T>) -> Self {
        match fill {
            Some(f) => Missing {
                fill: f,
                has_fill: !f.is_nan(),
            },
            None => Missing {
                fill: T::nan_or_zero(),
                has_fill: false,
            },
        }
    }
    #[inline(always)]
    pub fn is(&self, x: T) -> bool {
        x.is_nan() || (self.has_fill && x == self.fill)
    }
    /// What a window with no valid value becomes (mean/max/min), or any missing window when
    /// `skipna` is false: the fill value, else NaN (floats), else 0 (integers, where only an empty
    /// window can get here).
    #[inline(always)]
    pub fn fill(&self) -> T {
        self.fill
    }
}

/// Parses a fill value for dtype `T`.
pub fn fill_for<T: Elem>(v: Option<FillValue>) -> Result<Option<T>> {
    v.map(T::from_fill).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even() {
        assert_eq!(round_half_even(5, 2), 2);
        assert_eq!(round_half_even(7, 2), 4);
        assert_eq!(round_half_even(-5, 2), -2);
        assert_eq!(round_half_even(-7, 2), -4);
        assert_eq!(round_half_even(10, 4), 2);
        assert_eq!(round_half_even(11, 4), 3);
        assert_eq!(round_half_even(-11, 4), -3);
        assert_eq!(round_half_even(9, 4), 2);
        // The float-quotient path against plain integer arithmetic, around the rounding edges.
        for n in 1..40u64 {
            for s in -300i128..300 {
                let (q, r) = (s.div_euclid(n as i128), s.rem_euclid(n as i128));
                let want = match (2 * r).cmp(&(n as i128)) {
                    std::cmp::Ordering::Less => q,
                    std::cmp::Ordering::Greater => q + 1,
                    std::cmp::Ordering::Equal => q + (q & 1),
                };
                assert_eq!(round_half_even(s, n), want, "{s} / {n}");
            }
        }
        let big = (1i128 << 51) + 3;
        assert_eq!(round_half_even(big, 2), (1i128 << 50) + 2);
        assert_eq!(round_half_even(-(1i128 << 70), 3), -393530540239137101141);
    }

    #[test]
    fn small_int_mean_matches_exact_rounding() {
        for n in 1..70u32 {
            for s in (-40_000i64..40_000).step_by(7) {
                let want = round_half_even(s as i128, n as u64) as i64;
                if let Ok(w) = i16::try_from(want) {
                    assert_eq!(<i16 as Elem>::mean_wide(s, n), w, "{s} / {n}");
                }
            }
        }
        let s = 65535i64 * 4_000_000_000 - 2_000_000_000;
        assert_eq!(<u16 as Elem>::mean_wide(s, 4_000_000_000), 65534);
    }

    #[test]
    fn fills() {
        assert!(u8::from_fill(FillValue::Int(300)).is_err());
        assert!(u8::from_fill(FillValue::Int(-1)).is_err());
        assert_eq!(u8::from_fill(FillValue::Int(255)).unwrap(), 255);
        assert!(i16::from_fill(FillValue::Float(1.5)).is_err());
        assert_eq!(i16::from_fill(FillValue::Float(-3.0)).unwrap(), -3);
        assert!(i32::from_fill(FillValue::Float(f64::NAN)).is_err());
        assert!(f32::from_fill(FillValue::Float(0.1)).is_err());
        assert_eq!(f32::from_fill(FillValue::Float(-9999.0)).unwrap(), -9999.0);
        assert!(f32::from_fill(FillValue::Float(f64::NAN)).unwrap().is_nan());
        assert!(f32::from_fill(FillValue::Int((1 << 24) + 1)).is_err());
        assert_eq!(
            u64::from_fill(FillValue::Int(u64::MAX as i128)).unwrap(),
            u64::MAX
        );
    }

    #[test]
    fn sums_saturate() {
        assert_eq!(<i64 as Elem>::sum(i128::from(i64::MAX) * 3), i64::MAX);
        assert_eq!(<i8 as Elem>::sum(-(1i128 << 70)), i64::MIN);
        assert_eq!(<u64 as Elem>::sum(1i128 << 70), u64::MAX);
    }
}
