//! `pyramid_tile`: one native tile reduced to every coarser level at once. Level 1 comes from the
//! native cells, each further level from the previous level's *partial states* (sum + count,
//! running extreme + flags), never from finished values, so every level equals reducing the
//! native cells directly (integer means round once, from the exact native sum). The partial
//! states (`NativeStates`, `states_of`) are shared with the deep-level `Accumulator`.
//! Float mean and sum over halving strides (the writer's pyramid) take `fast_tile` instead: the
//! same values, with the states held as rows.
use crate::any::{AnyArray, IntoAny};
use crate::columns::{ColOp, Columns};
use crate::dtype::{fill_for, Elem, Missing};
use crate::error::{KernelError, Result};
use crate::kernel::{squeeze, Args, Kernel};
use crate::reduce::{
    as4, check_stride, drive, nearest, out_shape, split, strict_geom, stride_cells, ExtOp, Fold,
    Generic, Geom, Method, NearState, NearestOp, Op, StateFold, SumOp,
};
use ndarray::{s, Array4, ArrayView4, ArrayViewD};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Checks `pyramid_tile`'s cumulative strides: each positive and elementwise dividing the next.
fn check_strides(strides: &[Vec<i64>], ndim: usize) -> Result<Vec<[usize; 4]>> {
    let mut out: Vec<[usize; 4]> = Vec::with_capacity(strides.len());
    for (k, s) in strides.iter().enumerate() {
        let s = check_stride(s, ndim, "stride")?;
        if let Some(prev) = out.last() {
            if prev.iter().zip(&s).any(|(p, c)| c % p != 0) {
                return Err(KernelError::BadStrides(format!(
                    "strides[{k}] = {:?} is not a multiple of strides[{}] = {:?} on every axis; \
                     cumulative strides must each divide the next",
                    &s[4 - ndim..],
                    k - 1,
                    &prev[4 - ndim..]
                )));
            }
        }
        out.push(s);
    }
    Ok(out)
}

fn ident<S: Copy>(s: &S) -> S {
    *s
}

/// Partial states of coarser windows from finer partial states (AoS merge: these levels hold a
/// quarter or less of the native cells).
pub(crate) fn states_of<X: Copy + Sync, F: Fold<X>>(
    a: ArrayView4<'_, X>,
    g: &Geom,
    f: &F,
) -> Array4<F::S> {
    drive(
        a,
        g,
        &Generic {
            fold: f,
            emit: ident::<F::S>,
        },
    )
}

/// Partial states of windows of native cells: the vectorised column kernel for sum/mean/max/min,
/// the generic one for nearest.
pub trait NativeStates<T: Elem>: Op<T> {
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<Self::S>;
}

impl<T: Elem, const MEAN: bool> NativeStates<T> for SumOp<T, MEAN>
where
    SumOp<T, MEAN>: ColOp<T>,
{
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<Self::S> {
        drive(a, g, &Columns::<Self, true>::new(self))
    }
}

impl<T: Elem, const MAX: bool> NativeStates<T> for ExtOp<T, MAX> {
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<Self::S> {
        drive(a, g, &Columns::<Self, true>::new(self))
    }
}

impl<T: Elem> NativeStates<T> for NearestOp<T> {
    fn native_states(&self, a: ArrayView4<'_, T>, g: &Geom) -> Array4<NearState<T>> {
        states_of(a, g, self)
    }
}

/// Every level of one tile from partial states (all methods but nearest).
/// Outer-axis cells (rows of the last axis) per block of `pyramid_tile`'s first phase: small
/// enough that a block's partial states stay in cache, large enough to amortise the per-block
/// work.
const BLOCK_ROWS: usize = 32;
/// Native cells per block (blocks are made taller than one window when rows are short).
const BLOCK_CELLS: usize = 1 << 16;

/// Finished levels and the partial states of the last one.
type Levels<T, K> = (Vec<Array4<<K as Op<T>>::Out>>, Array4<<K as Fold<T>>::S>);

/// Coarser levels from the partial states `prev` of stride `prev_stride`: each level from the
/// previous level's states. Returns the finished levels and the last level's states.
fn merge_levels<T: Kernel, K: NativeStates<T>>(
    mut prev: Array4<K::S>,
    mut prev_stride: [usize; 4],
    strides: &[[usize; 4]],
    op: &K,
) -> Result<Levels<T, K>> {
    let mut out = Vec::with_capacity(strides.len());
    for s in strides {
        let op = &op.with_full(stride_cells(s)?);
        let ratio: [usize; 4] = std::array::from_fn(|i| s[i] / prev_stride[i]);
        let merge = StateFold(op, std::marker::PhantomData);
        let states = states_of(prev.view(), &strict_geom(prev.shape(), &ratio), &merge);
        out.push(states.map(|st| op.finish(st)));
        prev = states;
        prev_stride = *s;
    }
    Ok((out, prev))
}

/// All levels of a (small) block of native cells: the first from the native cells, the others
/// from partial states. Returns the finished levels and the last level's states.
fn block_levels<T: Kernel, K: NativeStates<T>>(
    v: ArrayView4<'_, T>,
    strides: &[[usize; 4]],
    op: &K,
) -> Result<Levels<T, K>> {
    let first = op.with_full(stride_cells(&strides[0])?);
    let states = first.native_states(v, &strict_geom(v.shape(), &strides[0]));
    let level = states.map(|st| first.finish(st));
    let (mut rest, last) = merge_levels(states, strides[0], &strides[1..], op)?;
    rest.insert(0, level);
    Ok((rest, last))
}

/// Copies `src` into `dst` at `start` (4-D).
fn put<X: Copy>(dst: &mut Array4<MaybeUninit<X>>, src: &Array4<X>, start: [usize; 4]) {
    let e = src.shape();
    dst.slice_mut(s![
        start[0]..start[0] + e[0],
        start[1]..start[1] + e[1],
        start[2]..start[2] + e[2],
        start[3]..start[3] + e[3]
    ])
    .zip_mut_with(src, |d, s| *d = MaybeUninit::new(*s));
}

/// Every level of one tile, exact, in one pass over the native cells.
///
/// Phase 1 cuts the tile into blocks of whole windows of the deepest level whose window spans
/// at most `BLOCK_ROWS` rows (the full last axis each) and builds levels up to that one block by
/// block, so partial states never leave the cache; blocks run in parallel. Phase 2 builds the
/// deeper levels from the assembled states of that level, which are at least 4x smaller than the
/// tile.
fn levels_from_states<T: Kernel, K: NativeStates<T>>(
    v: ArrayView4<'_, T>,
    strides: &[[usize; 4]],
    op: K,
    ndim: usize,
) -> Result<Vec<AnyArray>> {
    if strides.is_empty() {
        return Ok(Vec::new());
    }
    let rows = |s: &[usize; 4]| s[0] * s[1] * s[2];
    let m = strides
        .iter()
        .rposition(|s| rows(s) <= BLOCK_ROWS)
        .unwrap_or(0);
    let n = v.shape().to_vec();
    // Blocks hold several windows of level m along axis 2 when rows are short, so per-block
    // overhead stays small (any multiple of the level-m window nests all shallower windows).
    let mut bs = strides[m];
    let block_cells = rows(&bs) * n[3].max(1);
    bs[2] *= (BLOCK_CELLS / block_cells).clamp(1, n[2].div_ceil(bs[2]).max(1));
    let nb: [usize; 3] = std::array::from_fn(|i| n[i].div_ceil(bs[i]));
    let blocks: Vec<[usize; 3]> = (0..nb[0])
        .flat_map(|b0| (0..nb[1]).flat_map(move |b1| (0..nb[2]).map(move |b2| [b0, b1, b2])))
        .collect();
    let one = |b: &[usize; 3]| {
        let vb = v.slice(s![
            b[0] * bs[0]..((b[0] + 1) * bs[0]).min(n[0]),
            b[1] * bs[1]..((b[1] + 1) * bs[1]).min(n[1]),
            b[2] * bs[2]..((b[2] + 1) * bs[2]).min(n[2]),
            ..
        ]);
        block_levels(vb, &strides[..=m], &op)
    };
    let parts: Vec<Levels<T, K>> = if !split(v.len()) {
        blocks.iter().map(one).collect::<Result<_>>()?
    } else {
        blocks.par_iter().map(one).collect::<Result<_>>()?
    };
    // Assemble the block results (a copy of the outputs only, a quarter of the input or less).
    // Uninitialised: the blocks tile every level up to m exactly (block edges are multiples of
    // every stride up to m), so each cell is written once below.
    let mut levels: Vec<Array4<MaybeUninit<K::Out>>> = strides[..=m]
        .iter()
        .map(|s| Array4::uninit(out_shape(&strict_geom(&n, s))))
        .collect();
    // States of level m are only kept for the levels below it.
    let deeper = m + 1 < strides.len();
    let last_shape = if deeper {
        out_shape(&strict_geom(&n, &strides[m]))
    } else {
        [0; 4]
    };
    let mut last: Array4<MaybeUninit<K::S>> = Array4::uninit(last_shape);
    for (b, (lv, st)) in blocks.iter().zip(&parts) {
        for (k, (dst, src)) in levels.iter_mut().zip(lv).enumerate() {
            let sk = strides[k];
            put(
                dst,
                src,
                std::array::from_fn(|i| if i < 3 { b[i] * bs[i] / sk[i] } else { 0 }),
            );
        }
        if deeper {
            let sm = strides[m];
            put(
                &mut last,
                st,
                std::array::from_fn(|i| if i < 3 { b[i] * bs[i] / sm[i] } else { 0 }),
            );
        }
    }
    drop(parts);
    // SAFETY: every cell of every level up to m, and of `last`, was written above.
    let mut levels: Vec<Array4<K::Out>> = levels
        .into_iter()
        .map(|l| unsafe { l.assume_init() })
        .collect();
    if deeper {
        // SAFETY: as above.
        let last = unsafe { last.assume_init() };
        let (more, _) = merge_levels(last, strides[m], &strides[m + 1..], &op)?;
        levels.extend(more);
    }
    Ok(levels
        .into_iter()
        .map(|l| K::Out::into_any(squeeze(l, ndim)))
        .collect())
}

/// `nearest` at every (nesting) stride, each level picked from the previous one: a window's
/// top-left cell is its top-left sub-window's, and `floor(floor(n / a) / b) = floor(n / ab)`, so
/// the cells and shapes are those picked from the tile, while a level reads only the level
/// before (a quarter of the cells), not the whole tile at a growing stride.
fn nearest_levels<T: Elem>(v: ArrayView4<'_, T>, strides: &[[usize; 4]]) -> Vec<Array4<T>> {
    let mut out: Vec<Array4<T>> = Vec::with_capacity(strides.len());
    for (k, s) in strides.iter().enumerate() {
        let level = match k.checked_sub(1) {
            Some(p) => {
                let r: [usize; 4] = std::array::from_fn(|i| s[i] / strides[p][i]);
                nearest(out[p].view(), &strict_geom(out[p].shape(), &r))
            }
            None => nearest(v, &strict_geom(v.shape(), s)),
        };
        out.push(level);
    }
    out
}

/// `pyramid_tile` for element type `T`; `mode` computes every level of the majority method (from
/// `crate::mode`, which sits above this module).
pub fn pyramid_tile_t<T: Kernel>(
    a: ArrayViewD<'_, T>,
    strides: &[Vec<i64>],
    args: &Args,
    mode: impl Fn(ArrayView4<'_, T>, &[[usize; 4]], Missing<T>, bool, usize) -> Vec<AnyArray>,
) -> Result<Vec<AnyArray>> {
    let nd = a.ndim();
    let v = as4(a)?;
    let strides = check_strides(strides, nd)?;
    let miss = Missing::new(fill_for::<T>(args.fill)?);
    let skipna = args.skipna;
    if matches!(args.method, Method::Mean | Method::Sum) {
        if let Some(levels) = T::fast_pyramid(v, &strides, args.method, miss.fill(), skipna) {
            return Ok(levels
                .into_iter()
                .map(|l| T::into_any(squeeze(l, nd)))
                .collect());
        }
    }
    Ok(match args.method {
        Method::Mean => levels_from_states(v, &strides, SumOp::<T, true>::new(miss, skipna), nd)?,
        Method::Sum => levels_from_states(v, &strides, SumOp::<T, false>::new(miss, skipna), nd)?,
        Method::Max => levels_from_states(v, &strides, ExtOp::<T, true>::new(miss, skipna), nd)?,
        Method::Min => levels_from_states(v, &strides, ExtOp::<T, false>::new(miss, skipna), nd)?,
        // The top-left cells of every level are a strided view of the tile: nothing to carry.
        Method::Nearest => nearest_levels(v, &strides)
            .into_iter()
            .map(|l| T::into_any(squeeze(l, nd)))
            .collect(),
        Method::Mode => mode(v, &strides, miss, skipna, nd),
    })
}
