//! Typed reductions: the `Kernel` element trait, argument checks and the choice between the fast
//! and the generic path (`crate::api` dispatches on the dtype). pyo3-free, so `cargo test` exercises everything the Python API does.
use crate::any::{AnyArray, AnyView, IntoAny};
use crate::columns::{ColOp, Columns};
use crate::dtype::{fill_for, Elem, FillValue, Missing};
use crate::error::Result;
use crate::fast::{FastFloat, FastSum};
use crate::reduce::{
    as4, check_stride, drive, nearest, trim_geom, window_cells, ExtOp, Geom, Method, Op, SumOp,
};
use ndarray::{Array4, ArrayD, ArrayView4, ArrayViewD, IxDyn};

/// Element types with an `AnyArray` variant for their own and their sum's output.
pub trait Kernel: Elem {
    /// The typed view inside `v`, if `v` holds this element type.
    fn view(v: AnyView<'_>) -> Option<ArrayViewD<'_, Self>>;
    /// Mean or sum through the float fast path when it applies.
    fn fast_sum(
        _a: ArrayView4<'_, Self>,
        _g: &Geom,
        _m: Method,
        _fill: Self,
        _skipna: bool,
    ) -> Option<AnyArray> {
        None
    }
    /// Every level of a tile (`pyramid_tile`) through the float fast path when it applies.
    fn fast_pyramid(
        _v: ArrayView4<'_, Self>,
        _strides: &[[usize; 4]],
        _m: Method,
        _fill: Self,
        _skipna: bool,
    ) -> Option<Vec<Array4<Self>>> {
        None
    }
}

macro_rules! view_fn {
    ($v:ident) => {
        fn view(v: AnyView<'_>) -> Option<ArrayViewD<'_, Self>> {
            match v {
                AnyView::$v(a) => Some(a),
                _ => None,
            }
        }
    };
}

macro_rules! int_kernel {
    ($($v:ident $t:ty),*) => {$(impl Kernel for $t { view_fn!($v); })*};
}
int_kernel!(U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32, U64 u64, I64 i64);

fn fast_float<T: FastFloat + Kernel>(
    a: ArrayView4<'_, T>,
    g: &Geom,
    m: Method,
    fill: T,
    skipna: bool,
) -> Option<AnyArray> {
    let contiguous_rows = a.shape()[3] <= 1 || a.strides()[3] == 1;
    let window: usize = g.iter().map(|ax| ax.s.min(ax.n.max(1))).product();
    if !contiguous_rows || window >= u32::MAX as usize {
        return None;
    }
    let out = match (m, skipna) {
        (Method::Mean, true) => drive(a, g, &FastSum::<T, true, true>::new(fill)),
        (Method::Mean, false) => drive(a, g, &FastSum::<T, true, false>::new(fill)),
        (Method::Sum, true) => drive(a, g, &FastSum::<T, false, true>::new(fill)),
        (Method::Sum, false) => drive(a, g, &FastSum::<T, false, false>::new(fill)),
        _ => return None,
    };
    Some(T::into_any(out.into_dyn()))
}

/// The float types: both fast paths.
macro_rules! float_kernel {
    ($($v:ident $t:ty),*) => {$(
        impl Kernel for $t {
            view_fn!($v);
            fn fast_sum(
                a: ArrayView4<'_, $t>,
                g: &Geom,
                m: Method,
                fill: $t,
                skipna: bool,
            ) -> Option<AnyArray> {
                fast_float(a, g, m, fill, skipna)
            }
            fn fast_pyramid(
                v: ArrayView4<'_, $t>,
                strides: &[[usize; 4]],
                m: Method,
                fill: $t,
                skipna: bool,
            ) -> Option<Vec<Array4<$t>>> {
                crate::fast_tile::levels(v, strides, m, fill, skipna)
            }
        }
    )*};
}
float_kernel!(F32 f32, F64 f64);

/// Drops the leading axes `as4` added.
pub fn squeeze<O: Clone>(a: Array4<O>, ndim: usize) -> ArrayD<O> {
    let shape = a.shape()[4 - ndim..].to_vec();
    a.into_shape_with_order(IxDyn(&shape))
        .expect("same number of cells")
}

fn finish_any<O: Clone + IntoAny>(a: Array4<O>, ndim: usize) -> AnyArray {
    O::into_any(squeeze(a, ndim))
}

/// Validated common arguments.
pub struct Args {
    pub method: Method,
    pub fill: Option<FillValue>,
    pub skipna: bool,
}

impl Args {
    pub fn parse(method: &str, fill: Option<FillValue>, skipna: bool) -> Result<Args> {
        Ok(Args {
            method: method.parse()?,
            fill,
            skipna,
        })
    }
}

/// Finished values of every window through the column kernel.
fn columns<T: Elem, K: ColOp<T>>(v: ArrayView4<'_, T>, g: &Geom, op: K, ndim: usize) -> AnyArray {
    finish_any(drive(v, g, &Columns::<K, false>::new(&op)), ndim)
}

/// `block_reduce` for element type `T`; `mode` is the majority kernel (from `crate::mode`, which
/// sits above this module).
pub fn block_reduce_t<T: Kernel>(
    a: ArrayViewD<'_, T>,
    stride: &[i64],
    args: &Args,
    mode: impl Fn(ArrayView4<'_, T>, &Geom, Missing<T>, bool) -> Array4<T>,
) -> Result<AnyArray> {
    let nd = a.ndim();
    let v = as4(a)?;
    let stride = check_stride(stride, nd, "stride")?;
    let fill = fill_for::<T>(args.fill)?;
    let miss = Missing::new(fill);
    let g = trim_geom(v.shape(), &stride);
    let full = window_cells(&g)?;
    let skipna = args.skipna;
    if matches!(args.method, Method::Mean | Method::Sum) {
        if let Some(out) = T::fast_sum(v, &g, args.method, miss.fill(), skipna) {
            return Ok(reshape_any(out, nd));
        }
    }
    Ok(match args.method {
        Method::Mean => columns(
            v,
            &g,
            SumOp::<T, true>::new(miss, skipna).with_full(full),
            nd,
        ),
        Method::Sum => columns(
            v,
            &g,
            SumOp::<T, false>::new(miss, skipna).with_full(full),
            nd,
        ),
        Method::Max => columns(
            v,
            &g,
            ExtOp::<T, true>::new(miss, skipna).with_full(full),
            nd,
        ),
        Method::Min => columns(
            v,
            &g,
            ExtOp::<T, false>::new(miss, skipna).with_full(full),
            nd,
        ),
        Method::Nearest => finish_any(nearest(v, &g), nd),
        Method::Mode => finish_any(mode(v, &g, miss, skipna), nd),
    })
}

/// Reshapes a 4-D `AnyArray` (from the fast path) to `ndim` dimensions.
fn reshape_any(a: AnyArray, ndim: usize) -> AnyArray {
    macro_rules! sq {
        ($($v:ident),*) => {
            match a {
                $(AnyArray::$v(x) => AnyArray::$v(squeeze(x.into_dimensionality().expect("4-D"), ndim)),)*
            }
        };
    }
    sq!(U8, I8, U16, I16, U32, I32, U64, I64, F32, F64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::block_reduce;
    use crate::dtype::FillValue;

    fn rg<T: Elem, K: Op<T>>(a: ArrayView4<'_, T>, g: &Geom, op: &K) -> Array4<K::Out> {
        crate::reduce::reduce_generic(a, g, op).unwrap()
    }
    use ndarray::Array;

    #[test]
    fn fast_and_generic_agree() {
        let data: Vec<f32> = (0..7 * 9)
            .map(|i| {
                if i % 5 == 0 {
                    f32::NAN
                } else {
                    i as f32 * 0.37
                }
            })
            .collect();
        let a = Array::from_shape_vec(IxDyn(&[7, 9]), data).unwrap();
        for stride in [[2i64, 2], [3, 2], [1, 4], [8, 10], [2, 3]] {
            for skipna in [true, false] {
                for m in ["mean", "sum"] {
                    let fast = block_reduce(a.view().into(), &stride, m, None, skipna).unwrap();
                    let v = as4(a.view()).unwrap();
                    let g = trim_geom(v.shape(), &[1, 1, stride[0] as usize, stride[1] as usize]);
                    let miss = Missing::new(None);
                    let slow: ArrayD<f32> = if m == "mean" {
                        squeeze(rg(v, &g, &SumOp::<f32, true>::new(miss, skipna)), 2)
                    } else {
                        squeeze(rg(v, &g, &SumOp::<f32, false>::new(miss, skipna)), 2)
                    };
                    let AnyArray::F32(fast) = fast else {
                        panic!("dtype")
                    };
                    assert_eq!(fast.shape(), slow.shape());
                    for (x, y) in fast.iter().zip(slow.iter()) {
                        assert!(
                            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                            "{x} {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn errors() {
        let a = Array::from_shape_vec(IxDyn(&[2, 2]), vec![1u8, 2, 3, 4]).unwrap();
        let e = |r: Result<AnyArray>| r.unwrap_err().to_string();
        assert!(
            e(block_reduce(a.view().into(), &[2, 2], "median", None, true)).contains("\"mean\"")
        );
        assert!(e(block_reduce(a.view().into(), &[2], "mean", None, true))
            .contains("stride has 1 entries"));
        assert!(e(block_reduce(a.view().into(), &[2, 0], "mean", None, true)).contains("axis 1"));
        assert!(e(block_reduce(
            a.view().into(),
            &[2, 2],
            "mean",
            Some(FillValue::Int(300)),
            true
        ))
        .contains("300"));
        let z = Array::from_elem(IxDyn(&[]), 1u8);
        assert!(e(block_reduce(z.view().into(), &[], "mean", None, true)).contains("got 0"));
    }
}
