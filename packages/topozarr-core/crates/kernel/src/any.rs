//! The ten element types as one value: borrowed inputs (`AnyView`), owned results (`AnyArray`),
//! their numpy names and the largest number of dimensions. The bottom layer of the kernel: it
//! depends on no other module, so `error`, `dtype` and everything above can name dtypes.
use ndarray::{ArrayD, ArrayViewD};

/// numpy names of the supported dtypes, in the order `DTYPES` reports them.
pub const DTYPE_NAMES: [&str; 10] = [
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64",
];

/// Largest number of dimensions the kernel reduces.
pub const MAX_NDIM: usize = 4;

/// A borrowed input array of any supported dtype.
pub enum AnyView<'a> {
    U8(ArrayViewD<'a, u8>),
    I8(ArrayViewD<'a, i8>),
    U16(ArrayViewD<'a, u16>),
    I16(ArrayViewD<'a, i16>),
    U32(ArrayViewD<'a, u32>),
    I32(ArrayViewD<'a, i32>),
    U64(ArrayViewD<'a, u64>),
    I64(ArrayViewD<'a, i64>),
    F32(ArrayViewD<'a, f32>),
    F64(ArrayViewD<'a, f64>),
}

/// An owned result array of any supported dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyArray {
    U8(ArrayD<u8>),
    I8(ArrayD<i8>),
    U16(ArrayD<u16>),
    I16(ArrayD<i16>),
    U32(ArrayD<u32>),
    I32(ArrayD<i32>),
    U64(ArrayD<u64>),
    I64(ArrayD<i64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

/// Element types with an `AnyArray` variant.
pub trait IntoAny: Sized {
    fn into_any(a: ArrayD<Self>) -> AnyArray;
}

macro_rules! any_from {
    ($($v:ident $t:ty),*) => {$(
        impl IntoAny for $t {
            fn into_any(a: ArrayD<$t>) -> AnyArray {
                AnyArray::$v(a)
            }
        }
        impl From<ArrayD<$t>> for AnyArray {
            fn from(a: ArrayD<$t>) -> Self {
                AnyArray::$v(a)
            }
        }
        impl<'a> From<ArrayViewD<'a, $t>> for AnyView<'a> {
            fn from(a: ArrayViewD<'a, $t>) -> Self {
                AnyView::$v(a)
            }
        }
    )*};
}
any_from!(U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32, U64 u64, I64 i64, F32 f32, F64 f64);

/// Runs `$body` with `$a` bound to the typed view and `T` to its element type.
#[macro_export]
macro_rules! with_view {
    ($view:expr, $a:ident, $body:expr) => {
        match $view {
            $crate::any::AnyView::U8($a) => $body,
            $crate::any::AnyView::I8($a) => $body,
            $crate::any::AnyView::U16($a) => $body,
            $crate::any::AnyView::I16($a) => $body,
            $crate::any::AnyView::U32($a) => $body,
            $crate::any::AnyView::I32($a) => $body,
            $crate::any::AnyView::U64($a) => $body,
            $crate::any::AnyView::I64($a) => $body,
            $crate::any::AnyView::F32($a) => $body,
            $crate::any::AnyView::F64($a) => $body,
        }
    };
}

impl AnyView<'_> {
    pub fn ndim(&self) -> usize {
        with_view!(self, a, a.ndim())
    }
}
