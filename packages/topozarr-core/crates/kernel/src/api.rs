//! The kernel's entry points: parse the method, check the dimensions, dispatch on the dtype and
//! hand the majority method its own kernels. The top layer: `kernel`, `tile` and `accumulate`
//! receive the `mode` functions from here instead of importing the module above them.
use crate::accumulate::{self, LevelAccumulator};
use crate::any::{AnyArray, AnyView, MAX_NDIM};
use crate::dtype::{FillValue, SumOut};
use crate::error::{KernelError, Result};
use crate::kernel::{self, Args, Kernel};
use crate::methods::{Method, OutputDtype};
use crate::ops::{ExtOp, Fold, NearestOp, SumOp};
use crate::{mode, mode_acc, tile, with_view};

/// Runs `$body` with `T` bound to the element type named `$dtype` (a numpy name), or returns
/// `UnsupportedDtype`.
macro_rules! with_dtype {
    ($dtype:expr, $t:ident, $body:expr) => {
        match $dtype {
            "uint8" => {
                type $t = u8;
                $body
            }
            "int8" => {
                type $t = i8;
                $body
            }
            "uint16" => {
                type $t = u16;
                $body
            }
            "int16" => {
                type $t = i16;
                $body
            }
            "uint32" => {
                type $t = u32;
                $body
            }
            "int32" => {
                type $t = i32;
                $body
            }
            "uint64" => {
                type $t = u64;
                $body
            }
            "int64" => {
                type $t = i64;
                $body
            }
            "float32" => {
                type $t = f32;
                $body
            }
            "float64" => {
                type $t = f64;
                $body
            }
            other => Err(KernelError::UnsupportedDtype(other.to_string())),
        }
    };
}

/// `block_reduce`: see the Python docstring in `_core.pyi` for the full contract.
pub fn block_reduce(
    a: AnyView<'_>,
    stride: &[i64],
    method: &str,
    fill: Option<FillValue>,
    skipna: bool,
) -> Result<AnyArray> {
    let args = Args::parse(method, fill, skipna)?;
    with_view!(
        a,
        a,
        kernel::block_reduce_t(a, stride, &args, mode::mode_reduce)
    )
}

/// `pyramid_tile`: `block_reduce` of `a` for every cumulative stride, strict trim, in one pass.
pub fn pyramid_tile(
    a: AnyView<'_>,
    strides: &[Vec<i64>],
    method: &str,
    fill: Option<FillValue>,
    skipna: bool,
) -> Result<Vec<AnyArray>> {
    let args = Args::parse(method, fill, skipna)?;
    with_view!(
        a,
        a,
        tile::pyramid_tile_t(a, strides, &args, mode::pyramid_tile_mode)
    )
}

/// A new accumulator for one level of `shape` (level cells) over source dtype `dtype`.
pub fn new_accumulator(
    shape: &[i64],
    dtype: &str,
    method: &str,
    fill: Option<FillValue>,
    skipna: bool,
) -> Result<Box<dyn LevelAccumulator>> {
    let args = Args::parse(method, fill, skipna)?;
    let nd = shape.len();
    if nd == 0 || nd > MAX_NDIM {
        return Err(KernelError::BadNdim(nd));
    }
    let shape = shape
        .iter()
        .map(|&n| usize::try_from(n))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| KernelError::Invalid(format!("shape {shape:?} has a negative entry")))?;
    with_dtype!(
        dtype,
        T,
        accumulate::new_t::<T>(&shape, &args, mode_acc::new_mode_accumulator::<T>)
    )
}

/// numpy's name of the dtype `method` returns for source dtype `dtype`.
pub fn output_dtype(method: Method, dtype: &str) -> Result<&'static str> {
    with_dtype!(dtype, T, Ok(output_dtype_t::<T>(method)))
}

fn output_dtype_t<T: Kernel>(method: Method) -> &'static str {
    match method.info().output {
        OutputDtype::Source => T::NAME,
        OutputDtype::Sum => <T::Sum as SumOut>::NAME,
    }
}

/// Bytes per level cell of a fresh accumulator (`Accumulator.nbytes / cells`). For `mode`, each
/// cell's histogram then grows by [`mode_acc::ModeAcc::ENTRY_BYTES`] per distinct value.
pub fn state_bytes(method: Method, dtype: &str) -> Result<usize> {
    with_dtype!(dtype, T, Ok(state_bytes_t::<T>(method)))
}

fn state_bytes_t<T: Kernel>(method: Method) -> usize {
    use std::mem::size_of;
    match method {
        Method::Mean | Method::Sum => size_of::<<SumOp<T, true> as Fold<T>>::S>(),
        Method::Max | Method::Min => size_of::<<ExtOp<T, true> as Fold<T>>::S>(),
        Method::Nearest => size_of::<<NearestOp<T> as Fold<T>>::S>(),
        Method::Mode => mode_acc::ModeAcc::<T>::CELL_BYTES,
    }
}
