//! The exact `mode` [`crate::accumulate::LevelAccumulator`] (the engine's deep levels, whose
//! windows span tiles): one sorted `(value, count)` histogram per level cell, merged tile by
//! tile. Mode is not decomposable, so nothing smaller than the histogram can carry a window's
//! state between tiles; its growth is fallible (a `MemoryError`, not an abort).
use crate::acc_geometry::index_list;
use crate::accumulate::{fold_geometry, LevelAccumulator};
use crate::any::{AnyArray, AnyView};
use crate::dtype::{fill_for, Elem, FillValue, Missing};
use crate::error::{KernelError, Result};
use crate::kernel::{squeeze, Kernel};
use crate::mode::{merge_runs, mode_of_runs, runs_of, try_grow};
use crate::reduce::{stride_cells, Method};
use ndarray::{s, Array4};

/// Exact sparse histograms of one level, fed tile by tile (the `Accumulator` for `mode`).
pub struct ModeAcc<T: Elem> {
    miss: Missing<T>,
    skipna: bool,
    ndim: usize,
    shape: [usize; 4],
    stride: Option<[usize; 4]>,
    /// Sorted `(value, count)` runs of the valid native cells of each level cell (row-major).
    cells: Vec<Vec<(T, u32)>>,
}

impl<T: Elem> ModeAcc<T> {
    /// Bytes of one empty cell (its histogram's header).
    pub const CELL_BYTES: usize = std::mem::size_of::<Vec<(T, u32)>>();
    /// Bytes each distinct value adds to a cell's histogram.
    pub const ENTRY_BYTES: usize = std::mem::size_of::<(T, u32)>();
}

impl<T: Kernel> ModeAcc<T> {
    fn flat(&self, i: [usize; 4]) -> usize {
        ((i[0] * self.shape[1] + i[1]) * self.shape[2] + i[2]) * self.shape[3] + i[3]
    }
}

impl<T: Kernel> LevelAccumulator for ModeAcc<T> {
    fn fold(
        &mut self,
        a: AnyView<'_>,
        offset: &[i64],
        stride: &[i64],
        phase: Option<&[i64]>,
    ) -> Result<()> {
        let (v, offset, _phase, g) =
            fold_geometry::<T>(a, self.ndim, offset, stride, phase, &mut self.stride)?;
        let n: [usize; 4] =
            std::array::from_fn(|i| g[i].out.min(self.shape[i].saturating_sub(offset[i])));
        let mut buf: Vec<T> = Vec::new();
        let mut runs: Vec<(T, u32)> = Vec::new();
        for i0 in 0..n[0] {
            for i1 in 0..n[1] {
                for i2 in 0..n[2] {
                    for i3 in 0..n[3] {
                        let w = v.slice(s![
                            g[0].lo(i0)..g[0].hi(i0),
                            g[1].lo(i1)..g[1].hi(i1),
                            g[2].lo(i2)..g[2].hi(i2),
                            g[3].lo(i3)..g[3].hi(i3)
                        ]);
                        buf.clear();
                        let miss = self.miss;
                        try_grow(&mut buf, w.len())?;
                        buf.extend(w.iter().copied().filter(|&x| !miss.is(x)));
                        if buf.is_empty() {
                            continue;
                        }
                        runs.clear();
                        runs_of(&mut buf, &mut runs)?;
                        let k = self.flat([
                            offset[0] + i0,
                            offset[1] + i1,
                            offset[2] + i2,
                            offset[3] + i3,
                        ]);
                        merge_runs(&mut self.cells[k], &runs)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn result(&self, start: Option<&[i64]>, stop: Option<&[i64]>) -> Result<AnyArray> {
        let nd = self.ndim;
        let shape = self.shape;
        let start = match start {
            Some(s) => index_list(s, nd, "start")?,
            None => [0; 4],
        };
        let stop = match stop {
            Some(s) => {
                let mut s = index_list(s, nd, "stop")?;
                s[..4 - nd].fill(1);
                s
            }
            None => shape,
        };
        if (0..4).any(|i| start[i] > stop[i] || stop[i] > shape[i]) {
            return Err(KernelError::Invalid(format!(
                "region start={:?} stop={:?} is not inside the level shape {:?}",
                &start[4 - nd..],
                &stop[4 - nd..],
                &shape[4 - nd..]
            )));
        }
        // Cells of windows never folded count as missing (fewer valid cells than a window).
        let full = match self.stride {
            Some(s) => stride_cells(&s)? as u64,
            None => 1,
        };
        let rshape: [usize; 4] = std::array::from_fn(|i| stop[i] - start[i]);
        let mut out = Vec::with_capacity(rshape.iter().product());
        for i0 in start[0]..stop[0] {
            for i1 in start[1]..stop[1] {
                for i2 in start[2]..stop[2] {
                    for i3 in start[3]..stop[3] {
                        let h = &self.cells[self.flat([i0, i1, i2, i3])];
                        let valid: u64 = h.iter().map(|&(_, c)| c as u64).sum();
                        let v = if valid < full && !self.skipna {
                            None
                        } else {
                            mode_of_runs(h)
                        };
                        out.push(v.unwrap_or(self.miss.fill()));
                    }
                }
            }
        }
        let out = Array4::from_shape_vec(rshape, out).expect("region size");
        Ok(T::into_any(squeeze(out, nd)))
    }

    fn nbytes(&self) -> usize {
        self.cells.len() * Self::CELL_BYTES
            + self
                .cells
                .iter()
                .map(|h| h.capacity() * Self::ENTRY_BYTES)
                .sum::<usize>()
    }

    fn shape(&self) -> Vec<usize> {
        self.shape[4 - self.ndim..].to_vec()
    }

    fn dtype(&self) -> &'static str {
        T::NAME
    }

    fn method(&self) -> Method {
        Method::Mode
    }
}

/// A new `mode` accumulator for one level of `shape` (level cells, 1 to 4 dimensions).
pub fn new_mode_accumulator<T: Kernel>(
    shape: &[usize],
    fill: Option<FillValue>,
    skipna: bool,
) -> Result<Box<dyn LevelAccumulator>> {
    let miss = Missing::new(fill_for::<T>(fill)?);
    let ndim = shape.len();
    let shape4: [usize; 4] = std::array::from_fn(|i| {
        if i < 4 - ndim {
            1
        } else {
            shape[i - (4 - ndim)]
        }
    });
    let cell = ModeAcc::<T>::CELL_BYTES;
    let cells = shape4.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    let bytes = cells.and_then(|c| c.checked_mul(cell));
    let (Some(cells), Some(bytes)) = (cells, bytes) else {
        return Err(KernelError::OutOfMemory(usize::MAX));
    };
    let mut v: Vec<Vec<(T, u32)>> = Vec::new();
    v.try_reserve_exact(cells)
        .map_err(|_| KernelError::OutOfMemory(bytes))?;
    v.resize_with(cells, Vec::new);
    Ok(Box::new(ModeAcc {
        miss,
        skipna,
        ndim,
        shape: shape4,
        stride: None,
        cells: v,
    }))
}
