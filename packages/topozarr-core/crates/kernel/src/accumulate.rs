//! The accumulating form used by the single-pass pyramid writer (with `tile.rs`).
//!
//! * [`crate::api::pyramid_tile`] reduces one native tile to every coarser level at once: level 1 from the
//!   native cells, each further level from the previous level's *partial states* (sum + count,
//!   running extreme + flags), never from finished values, so every level equals reducing the
//!   native cells directly (integer means round once, from the exact native sum).
//! * [`crate::api::new_accumulator`] keeps those partial states for one whole level across many tiles, for the
//!   deep levels whose windows span several tiles.
use crate::any::{AnyArray, AnyView, IntoAny};
use crate::dtype::{fill_for, FillValue, Missing};
use crate::error::{KernelError, Result};
use crate::kernel::{squeeze, Args, Kernel};
use crate::reduce::{as4, check_stride, stride_cells, Ax, ExtOp, Geom, Method, NearestOp, SumOp};
use ndarray::{s, Array4, ArrayView4, ArrayViewD, Zip};

use crate::tile::NativeStates;

/// Partial states of one whole level, fed tile by tile. Not thread-safe by itself: callers
/// serialise `fold` (Python's borrow checking on the wrapping object does).
pub trait LevelAccumulator: Send + Sync {
    /// Folds a native tile whose first cell lies `phase` native cells into level cell `offset`.
    fn fold(
        &mut self,
        a: AnyView<'_>,
        offset: &[i64],
        stride: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<()>;
    /// Finished values of level cells `[start, stop)`.
    fn result(&self, start: Option<&[i64]>, stop: Option<&[i64]>) -> Result<AnyArray>;
    /// Bytes held by the partial states.
    fn nbytes(&self) -> usize;
    fn shape(&self) -> Vec<usize>;
    fn dtype(&self) -> &'static str;
    fn method(&self) -> Method;
}

struct LevelAcc<T: Kernel, K: NativeStates<T>> {
    op: K,
    /// The stride of the first fold; every later fold must use the same one.
    stride: Option<[usize; 4]>,
    method: Method,
    ndim: usize,
    states: Array4<K::S>,
    _t: std::marker::PhantomData<T>,
}

/// A validated tile: its 4-D view, where it lands (`offset`, `phase`) and its window geometry.
pub(crate) type FoldTile<'a, T> = (ArrayView4<'a, T>, [usize; 4], [usize; 4], Geom);

/// Checks one tile against its accumulator and derives the tile's window geometry.
///
/// Shared by every `LevelAccumulator::fold`: the tile's dtype and dimensionality must match,
/// `offset`/`stride`/`phase` are validated (and returned as 4-D indices), and `first_stride` pins the stride of the first
/// fold so that later folds cannot mix window sizes.
pub(crate) fn fold_geometry<'a, T: Kernel>(
    a: AnyView<'a>,
    ndim: usize,
    offset: &[i64],
    stride: &[i64],
    phase: Option<&[i64]>,
    first_stride: &mut Option<[usize; 4]>,
) -> Result<FoldTile<'a, T>> {
    let got = crate::with_view!(&a, x, elem_name(x));
    let a = T::view(a).ok_or_else(|| {
        KernelError::DtypeMismatch(format!(
            "tile dtype {got} does not match the accumulator's dtype {}",
            T::NAME
        ))
    })?;
    let nd = ndim;
    if a.ndim() != nd {
        return Err(KernelError::Invalid(format!(
            "tile has {} dimensions but the accumulator has {nd}",
            a.ndim()
        )));
    }
    let v = as4(a)?;
    let stride = check_stride(stride, nd, "stride")?;
    let offset = index_list(offset, nd, "offset")?;
    let phase = match phase {
        Some(p) => index_list(p, nd, "phase")?,
        None => [0; 4],
    };
    if let Some(i) = (0..4).find(|&i| phase[i] >= stride[i]) {
        return Err(KernelError::Invalid(format!(
            "phase {:?} must be smaller than stride {:?} on every axis (axis {})",
            &phase[4 - nd..],
            &stride[4 - nd..],
            i - (4 - nd)
        )));
    }
    match *first_stride {
        None => {
            stride_cells(&stride)?;
            *first_stride = Some(stride);
        }
        Some(s) if s != stride => {
            return Err(KernelError::Invalid(format!(
                "stride {:?} differs from the stride {:?} of earlier folds",
                &stride[4 - nd..],
                &s[4 - nd..]
            )))
        }
        Some(_) => {}
    }
    let g: Geom = std::array::from_fn(|i| Ax::touched(v.shape()[i], stride[i], phase[i]));
    Ok((v, offset, phase, g))
}

pub(crate) fn index_list(v: &[i64], ndim: usize, what: &'static str) -> Result<[usize; 4]> {
    if v.len() != ndim {
        return Err(KernelError::LengthMismatch {
            what,
            got: v.len(),
            expected: ndim,
        });
    }
    let mut out = [0usize; 4];
    for (o, &x) in out[4 - ndim..].iter_mut().zip(v) {
        *o = usize::try_from(x).map_err(|_| {
            KernelError::Invalid(format!(
                "{what} {v:?} has a negative entry; entries must be >= 0"
            ))
        })?;
    }
    Ok(out)
}

impl<T: Kernel, K: NativeStates<T>> LevelAccumulator for LevelAcc<T, K> {
    fn fold(
        &mut self,
        a: AnyView<'_>,
        offset: &[i64],
        stride: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<()> {
        let (v, offset, phase, g) =
            fold_geometry::<T>(a, self.ndim, offset, stride, phase, &mut self.stride)?;
        let mut tile = self.op.native_states(v, &g);
        if self.method == Method::Nearest {
            // A window that starts before the tile has its top-left cell in another tile: drop
            // what this tile saw of it, so only the true top-left cell is ever kept.
            let empty = self.op.empty();
            let tshape = tile.shape().to_vec();
            for i in (0..4).filter(|&i| phase[i] > 0 && tshape[i] > 0) {
                tile.index_axis_mut(ndarray::Axis(i), 0).fill(empty);
            }
        }
        let shape = self.states.shape().to_vec();
        let n: [usize; 4] =
            std::array::from_fn(|i| tile.shape()[i].min(shape[i].saturating_sub(offset[i])));
        if n.contains(&0) {
            return Ok(());
        }
        let mut dst = self.states.slice_mut(s![
            offset[0]..offset[0] + n[0],
            offset[1]..offset[1] + n[1],
            offset[2]..offset[2] + n[2],
            offset[3]..offset[3] + n[3]
        ]);
        let src = tile.slice(s![..n[0], ..n[1], ..n[2], ..n[3]]);
        let op = &self.op;
        Zip::from(&mut dst)
            .and(&src)
            .for_each(|d, s| op.merge(d, s));
        Ok(())
    }

    fn result(&self, start: Option<&[i64]>, stop: Option<&[i64]>) -> Result<AnyArray> {
        let nd = self.ndim;
        let shape = self.states.shape();
        let start = match start {
            Some(s) => index_list(s, nd, "start")?,
            None => [0; 4],
        };
        let stop = match stop {
            Some(s) => {
                // The padding axes have length 1: the region spans all of them.
                let mut s = index_list(s, nd, "stop")?;
                s[..4 - nd].fill(1);
                s
            }
            None => std::array::from_fn(|i| shape[i]),
        };
        if (0..4).any(|i| start[i] > stop[i] || stop[i] > shape[i]) {
            return Err(KernelError::Invalid(format!(
                "region start={:?} stop={:?} is not inside the level shape {:?}",
                &start[4 - nd..],
                &stop[4 - nd..],
                &shape[4 - nd..]
            )));
        }
        let region = self.states.slice(s![
            start[0]..stop[0],
            start[1]..stop[1],
            start[2]..stop[2],
            start[3]..stop[3]
        ]);
        // Cells of windows never folded count as missing (the count stays below a whole window).
        let full = match self.stride {
            Some(s) => stride_cells(&s)?,
            None => 1,
        };
        let op = self.op.with_full(full);
        let out = Array4::from_shape_vec(
            region.raw_dim(),
            region.iter().map(|st| op.finish(st)).collect(),
        )
        .expect("region size");
        Ok(K::Out::into_any(squeeze(out, nd)))
    }

    fn nbytes(&self) -> usize {
        self.states.len() * std::mem::size_of::<K::S>()
    }

    fn shape(&self) -> Vec<usize> {
        self.states.shape()[4 - self.ndim..].to_vec()
    }

    fn dtype(&self) -> &'static str {
        T::NAME
    }

    fn method(&self) -> Method {
        self.method
    }
}

pub(crate) fn elem_name<T: crate::dtype::Elem>(_: &ArrayViewD<'_, T>) -> &'static str {
    T::NAME
}

fn make<T: Kernel, K: NativeStates<T> + 'static>(
    op: K,
    method: Method,
    shape: &[usize],
) -> Result<Box<dyn LevelAccumulator>> {
    let ndim = shape.len();
    let shape4: [usize; 4] = std::array::from_fn(|i| {
        if i < 4 - ndim {
            1
        } else {
            shape[i - (4 - ndim)]
        }
    });
    let cells = shape4.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    let bytes = cells.and_then(|c| c.checked_mul(std::mem::size_of::<K::S>()));
    let (Some(cells), Some(bytes)) = (cells, bytes) else {
        return Err(KernelError::OutOfMemory(usize::MAX));
    };
    // Refuse (MemoryError) rather than abort when the level does not fit in memory.
    let mut v: Vec<K::S> = Vec::new();
    v.try_reserve_exact(cells)
        .map_err(|_| KernelError::OutOfMemory(bytes))?;
    v.resize(cells, op.empty());
    let states = Array4::from_shape_vec(shape4, v).expect("cells");
    Ok(Box::new(LevelAcc::<T, K> {
        stride: None,
        op,
        method,
        ndim,
        states,
        _t: std::marker::PhantomData,
    }))
}

/// A new accumulator over element type `T`; `mode` makes the majority one (from `crate::mode_acc`,
/// which sits above this module).
pub fn new_t<T: Kernel>(
    shape: &[usize],
    args: &Args,
    mode: impl Fn(&[usize], Option<FillValue>, bool) -> Result<Box<dyn LevelAccumulator>>,
) -> Result<Box<dyn LevelAccumulator>> {
    let miss = Missing::new(fill_for::<T>(args.fill)?);
    let skipna = args.skipna;
    match args.method {
        Method::Mean => make::<T, _>(SumOp::<T, true>::new(miss, skipna), args.method, shape),
        Method::Sum => make::<T, _>(SumOp::<T, false>::new(miss, skipna), args.method, shape),
        Method::Max => make::<T, _>(ExtOp::<T, true>::new(miss, skipna), args.method, shape),
        Method::Min => make::<T, _>(ExtOp::<T, false>::new(miss, skipna), args.method, shape),
        Method::Nearest => make::<T, _>(NearestOp { miss }, args.method, shape),
        Method::Mode => mode(shape, args.fill, skipna),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{block_reduce, new_accumulator, pyramid_tile};
    use ndarray::{Array, ArrayD, IxDyn};

    fn raster() -> ArrayD<i32> {
        Array::from_shape_fn(IxDyn(&[13, 17]), |ix| {
            ((ix[0] * 31 + ix[1] * 7) % 23) as i32 - 5
        })
    }

    #[test]
    fn pyramid_levels_equal_direct_reduction() {
        let a = raster();
        for m in crate::reduce::METHODS {
            let levels = pyramid_tile(
                a.view().into(),
                &[vec![1, 2], vec![2, 4], vec![4, 8]],
                m,
                Some(crate::dtype::FillValue::Int(0)),
                true,
            )
            .unwrap();
            for (lvl, s) in levels.iter().zip([[1usize, 2], [2, 4], [4, 8]]) {
                let (h, w) = (13 / s[0] * s[0], 17 / s[1] * s[1]);
                let cut = a.slice(s![..h, ..w]).into_dyn();
                let want = block_reduce(
                    cut.into(),
                    &[s[0] as i64, s[1] as i64],
                    m,
                    Some(crate::dtype::FillValue::Int(0)),
                    true,
                )
                .unwrap();
                assert_eq!(lvl, &want, "{m} {s:?}");
            }
        }
    }

    #[test]
    fn strides_must_nest() {
        let a = raster();
        let e = pyramid_tile(
            a.view().into(),
            &[vec![2, 2], vec![3, 4]],
            "mean",
            None,
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("strides[1]"), "{e}");
    }

    #[test]
    fn accumulator_in_uneven_tiles() {
        let a = raster();
        for m in crate::reduce::METHODS {
            let mut acc = new_accumulator(
                &[3, 4],
                "int32",
                m,
                Some(crate::dtype::FillValue::Int(3)),
                true,
            )
            .unwrap();
            // Row tiles of 3 rows and column tiles of 5 columns against a 4x4 window.
            for r0 in (0..13).step_by(3) {
                for c0 in (0..17).step_by(5) {
                    let t = a
                        .slice(s![r0..(r0 + 3).min(13), c0..(c0 + 5).min(17)])
                        .into_dyn();
                    let off = [(r0 / 4) as i64, (c0 / 4) as i64];
                    let ph = [(r0 % 4) as i64, (c0 % 4) as i64];
                    acc.fold(t.into(), &off, &[4, 4], Some(&ph)).unwrap();
                }
            }
            let cut = a.slice(s![..12, ..16]).into_dyn();
            let want = block_reduce(
                cut.into(),
                &[4, 4],
                m,
                Some(crate::dtype::FillValue::Int(3)),
                true,
            )
            .unwrap();
            assert_eq!(acc.result(None, None).unwrap(), want, "{m}");
        }
    }
}
