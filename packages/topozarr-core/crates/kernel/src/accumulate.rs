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
use crate::reduce::{
    as4, check_stride, stride_cells, Ax, ExtOp, Geom, Method, NearestOp, StateBytes, StateFold,
    SumOp,
};
use ndarray::{s, Array4, ArrayView4, ArrayViewD, Zip};

use crate::tile::{states_of, NativeStates};

use crate::acc_geometry::{
    clamp, drop_leading, first_children, index_list, phase_list, pin_stride, signed4,
};

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
    /// Bytes of one cell's partial state in `export_states` (0: the states are not portable).
    fn state_bytes(&self) -> usize {
        0
    }
    /// Every cell's partial state, row-major, `state_bytes()` little-endian bytes each.
    fn export_states(&self) -> Result<Vec<u8>> {
        Err(not_portable(self.method()))
    }
    /// Merges states exported by an accumulator of the same dtype and method: a block of
    /// `shape` cells whose first cell is this accumulator's cell `offset` (entries may be
    /// negative: cells outside this accumulator are ignored). `stride` is the native stride of
    /// their windows; it pins this accumulator's stride as a fold does.
    fn merge_states(
        &mut self,
        _data: &[u8],
        _shape: &[i64],
        _offset: &[i64],
        _stride: &[i64],
    ) -> Result<()> {
        Err(not_portable(self.method()))
    }
    /// A new accumulator of the states of windows of `factor` of this accumulator's cells:
    /// window `j` covers cells `[j*f - phase, (j+1)*f - phase)` (partial windows included),
    /// its stride this one's times `factor`.
    fn coarsened(
        &self,
        _factor: &[i64],
        _phase: Option<&[i64]>,
    ) -> Result<Box<dyn LevelAccumulator>> {
        Err(not_portable(self.method()))
    }
}

fn not_portable(m: Method) -> KernelError {
    KernelError::Invalid(format!(
        "{} partial states cannot be exported, merged or coarsened (a histogram per cell)",
        m.name()
    ))
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
    let phase = phase_list(phase, &stride, nd, "stride")?;
    pin_stride(first_stride, stride, nd)?;
    let g: Geom = std::array::from_fn(|i| Ax::touched(v.shape()[i], stride[i], phase[i]));
    Ok((v, offset, phase, g))
}

impl<T: Kernel, K: NativeStates<T> + 'static> LevelAccumulator for LevelAcc<T, K> {
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
            drop_leading(&mut tile, &phase, self.op.empty());
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

    fn state_bytes(&self) -> usize {
        <K::S as StateBytes>::SIZE
    }

    fn export_states(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.try_reserve_exact(self.states.len() * self.state_bytes())
            .map_err(|_| KernelError::OutOfMemory(self.states.len() * self.state_bytes()))?;
        for st in &self.states {
            st.put(&mut out);
        }
        Ok(out)
    }

    fn merge_states(
        &mut self,
        data: &[u8],
        shape: &[i64],
        offset: &[i64],
        stride: &[i64],
    ) -> Result<()> {
        let nd = self.ndim;
        let mut shape = index_list(shape, nd, "shape")?;
        shape[..4 - nd].fill(1); // the padding axes have length 1
        let offset = signed4(offset, nd, "offset")?;
        let stride = check_stride(stride, nd, "stride")?;
        let size = self.state_bytes();
        let cells: usize = shape.iter().product();
        if data.len() != cells * size {
            return Err(KernelError::Invalid(format!(
                "{} bytes of states for shape {:?}: expected {} ({size} a cell)",
                data.len(),
                &shape[4 - nd..],
                cells * size
            )));
        }
        pin_stride(&mut self.stride, stride, nd)?;
        let src = Array4::from_shape_vec(
            shape,
            data.chunks_exact(size)
                .map(<K::S as StateBytes>::get)
                .collect(),
        )
        .expect("cells");
        let dst_shape = self.states.shape().to_vec();
        // Source cells [lo, hi) land on this accumulator's cells [lo + offset, hi + offset).
        let lo: [usize; 4] = std::array::from_fn(|i| clamp(-offset[i], shape[i]));
        let hi: [usize; 4] =
            std::array::from_fn(|i| clamp(dst_shape[i] as i64 - offset[i], shape[i]));
        if (0..4).any(|i| lo[i] >= hi[i]) {
            return Ok(());
        }
        let at = |i: usize, x: usize| (x as i64 + offset[i]) as usize;
        let mut dst = self.states.slice_mut(s![
            at(0, lo[0])..at(0, hi[0]),
            at(1, lo[1])..at(1, hi[1]),
            at(2, lo[2])..at(2, hi[2]),
            at(3, lo[3])..at(3, hi[3])
        ]);
        let src = src.slice(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2], lo[3]..hi[3]]);
        let op = &self.op;
        Zip::from(&mut dst)
            .and(&src)
            .for_each(|d, s| op.merge(d, s));
        Ok(())
    }

    fn coarsened(
        &self,
        factor: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<Box<dyn LevelAccumulator>> {
        let nd = self.ndim;
        let Some(stride) = self.stride else {
            return Err(KernelError::Invalid(
                "nothing was folded or merged into this accumulator: it has no stride to coarsen"
                    .into(),
            ));
        };
        let factor = check_stride(factor, nd, "factor")?;
        let phase = phase_list(phase, &factor, nd, "factor")?;
        let shape = self.states.shape();
        let g: Geom = std::array::from_fn(|i| Ax::touched(shape[i], factor[i], phase[i]));
        let states = if self.method == Method::Nearest {
            // A window's top-left cell is its first child's: merging the children would take
            // a later child's value when the first one's lies in another accumulator.
            first_children(&self.states, &g, &factor, &phase, self.op.empty())
        } else {
            states_of(
                self.states.view(),
                &g,
                &StateFold(&self.op, std::marker::PhantomData),
            )
        };
        Ok(Box::new(LevelAcc::<T, K> {
            op: self.op,
            stride: Some(std::array::from_fn(|i| stride[i] * factor[i])),
            method: self.method,
            ndim: nd,
            states,
            _t: std::marker::PhantomData,
        }))
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

    /// Folds the columns `[c0, c1)` of `a` into a fresh accumulator over the level-`w` cells
    /// they touch; returns it and the first cell's column.
    fn column_part(
        a: &ArrayD<i32>,
        m: &str,
        w: usize,
        c0: usize,
        c1: usize,
    ) -> (Box<dyn LevelAccumulator>, usize) {
        let first = c0 / w;
        let n = c1.div_ceil(w) - first;
        let rows = a.shape()[0].div_ceil(w);
        let fill = Some(crate::dtype::FillValue::Int(3));
        let mut acc = new_accumulator(&[rows as i64, n as i64], "int32", m, fill, true).unwrap();
        let t = a.slice(s![.., c0..c1]).into_dyn();
        let (w, ph) = (w as i64, (c0 % w) as i64);
        acc.fold(t.into(), &[0, 0], &[w, w], Some(&[0, ph]))
            .unwrap();
        (acc, first)
    }

    fn direct(a: &ArrayD<i32>, m: &str, w: usize) -> AnyArray {
        let (h, wd) = (a.shape()[0] / w * w, a.shape()[1] / w * w);
        let cut = a.slice(s![..h, ..wd]).into_dyn();
        let fill = Some(crate::dtype::FillValue::Int(3));
        block_reduce(cut.into(), &[w as i64, w as i64], m, fill, true).unwrap()
    }

    #[test]
    fn exported_states_merge_across_a_cut_window() {
        let a = raster();
        for m in ["mean", "sum", "max", "min", "nearest"] {
            // Columns cut at 9: level-4 window 2 (columns 8..12) is split between the parts.
            let (left, l0) = column_part(&a, m, 4, 0, 9);
            let (right, r0) = column_part(&a, m, 4, 9, 17);
            let fill = Some(crate::dtype::FillValue::Int(3));
            let mut whole = new_accumulator(&[4, 5], "int32", m, fill, true).unwrap();
            for (part, c) in [(&right, r0), (&left, l0)] {
                let shape: Vec<i64> = part.shape().iter().map(|&n| n as i64).collect();
                let data = part.export_states().unwrap();
                assert_eq!(
                    data.len(),
                    part.state_bytes() * shape[0] as usize * shape[1] as usize
                );
                whole
                    .merge_states(&data, &shape, &[0, c as i64], &[4, 4])
                    .unwrap();
            }
            let got = whole.result(Some(&[0, 0]), Some(&[3, 4])).unwrap();
            assert_eq!(got, direct(&a, m, 4), "{m}");
        }
    }

    #[test]
    fn coarsened_states_equal_the_coarser_level() {
        let a = raster();
        for m in ["mean", "sum", "max", "min", "nearest"] {
            // Level-2 cells split at cell 3 (odd): the right part's first level-4 window
            // starts one cell before it (phase 1).
            let (left, _) = column_part(&a, m, 2, 0, 6);
            let (right, r0) = column_part(&a, m, 2, 6, 17);
            let fill = Some(crate::dtype::FillValue::Int(3));
            let mut whole = new_accumulator(&[4, 5], "int32", m, fill, true).unwrap();
            for (part, c) in [(&right, r0), (&left, 0)] {
                let coarse = part.coarsened(&[2, 2], Some(&[0, (c % 2) as i64])).unwrap();
                let shape: Vec<i64> = coarse.shape().iter().map(|&n| n as i64).collect();
                let data = coarse.export_states().unwrap();
                whole
                    .merge_states(&data, &shape, &[0, (c / 2) as i64], &[4, 4])
                    .unwrap();
            }
            let got = whole.result(Some(&[0, 0]), Some(&[3, 4])).unwrap();
            assert_eq!(got, direct(&a, m, 4), "{m}");
        }
    }

    #[test]
    fn merge_checks_its_input() {
        let fill = Some(crate::dtype::FillValue::Int(3));
        let mut acc = new_accumulator(&[2, 2], "int32", "mean", fill, true).unwrap();
        let e = acc
            .merge_states(&[0; 5], &[1, 1], &[0, 0], &[2, 2])
            .unwrap_err();
        assert!(e.to_string().contains("expected"), "{e}");
        let e = acc.coarsened(&[2, 2], None).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("no stride"), "{e}");
        let mut mode = new_accumulator(&[2, 2], "int32", "mode", fill, true).unwrap();
        let e = mode.export_states().unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
        assert!(mode.merge_states(&[], &[0, 0], &[0, 0], &[2, 2]).is_err());
    }

    #[test]
    fn nearest_coarsened_keeps_the_first_cell_whose_top_left_lies_elsewhere() {
        // Native [0, 1, 1, 1], windows of 2 then 4: the part of cells 1..4 holds level-2 cell
        // 0 without its top-left (native 0, in the other part); coarsened it must not offer
        // native 2's value for the level-4 window.
        let a = ndarray::arr1(&[0u8, 1, 1, 1]).into_dyn();
        let mut part = new_accumulator(&[2], "uint8", "nearest", None, false).unwrap();
        part.fold(a.slice(s![1..]).into_dyn().into(), &[0], &[2], Some(&[1]))
            .unwrap();
        let up = part.coarsened(&[2], None).unwrap();
        let mut whole = new_accumulator(&[1], "uint8", "nearest", None, false).unwrap();
        whole
            .merge_states(&up.export_states().unwrap(), &[1], &[0], &[4])
            .unwrap();
        let mut first = new_accumulator(&[1], "uint8", "nearest", None, false).unwrap();
        first
            .fold(a.slice(s![..1]).into_dyn().into(), &[0], &[2], None)
            .unwrap();
        let first = first.coarsened(&[2], None).unwrap();
        whole
            .merge_states(&first.export_states().unwrap(), &[1], &[0], &[4])
            .unwrap();
        let want: AnyArray = ndarray::arr1(&[0u8]).into_dyn().into();
        assert_eq!(whole.result(None, None).unwrap(), want);
    }
}
