//! Argument checks and window arithmetic shared by the accumulators (`accumulate`, `mode_acc`):
//! per-axis lists padded to 4-D, window phases, the stride an accumulator is pinned to, and the
//! first-child selection of `nearest` when states are coarsened.
use crate::error::{KernelError, Result};
use crate::reduce::{stride_cells, Geom};
use ndarray::{s, Array4};

/// Pins an accumulator's stride on its first fold or merge; later ones must use the same.
pub(crate) fn pin_stride(
    first: &mut Option<[usize; 4]>,
    stride: [usize; 4],
    nd: usize,
) -> Result<()> {
    match *first {
        None => {
            stride_cells(&stride)?;
            *first = Some(stride);
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
    Ok(())
}

/// For `nearest`: empties the first cell along every axis with a phase, whose window starts
/// before the input (its top-left cell lies elsewhere and is kept there only).
pub(crate) fn drop_leading<S: Copy>(states: &mut Array4<S>, phase: &[usize; 4], empty: S) {
    let shape = states.shape().to_vec();
    for i in (0..4).filter(|&i| phase[i] > 0 && shape[i] > 0) {
        states.index_axis_mut(ndarray::Axis(i), 0).fill(empty);
    }
}

/// A window phase per axis (default zeros), each smaller than its window (`window`, named
/// `what` in the error).
pub(crate) fn phase_list(
    phase: Option<&[i64]>,
    window: &[usize; 4],
    nd: usize,
    what: &str,
) -> Result<[usize; 4]> {
    let phase = match phase {
        Some(p) => index_list(p, nd, "phase")?,
        None => [0; 4],
    };
    if let Some(i) = (0..4).find(|&i| phase[i] >= window[i]) {
        return Err(KernelError::Invalid(format!(
            "phase {:?} must be smaller than {what} {:?} on every axis (axis {})",
            &phase[4 - nd..],
            &window[4 - nd..],
            i - (4 - nd)
        )));
    }
    Ok(phase)
}

/// The state of each window's first cell (`nearest`): window `j` of geometry `g` starts at
/// cell `j*f - phase`; a window starting before `states` (the first, with a phase) is empty.
pub(crate) fn first_children<S: Copy>(
    states: &Array4<S>,
    g: &Geom,
    factor: &[usize; 4],
    phase: &[usize; 4],
    empty: S,
) -> Array4<S> {
    let shape: [usize; 4] = std::array::from_fn(|i| g[i].out);
    let mut out = Array4::from_elem(shape, empty);
    let have = states.shape();
    let skip: [usize; 4] = std::array::from_fn(|i| usize::from(phase[i] > 0));
    let start: [usize; 4] = std::array::from_fn(|i| {
        if phase[i] > 0 {
            factor[i] - phase[i]
        } else {
            0
        }
        .min(have[i])
    });
    let step = |i: usize| factor[i] as isize;
    let src = states.slice(s![
        start[0]..;step(0),
        start[1]..;step(1),
        start[2]..;step(2),
        start[3]..;step(3)
    ]);
    let n: [usize; 4] =
        std::array::from_fn(|i| src.shape()[i].min(shape[i].saturating_sub(skip[i])));
    out.slice_mut(s![
        skip[0]..skip[0] + n[0],
        skip[1]..skip[1] + n[1],
        skip[2]..skip[2] + n[2],
        skip[3]..skip[3] + n[3]
    ])
    .assign(&src.slice(s![..n[0], ..n[1], ..n[2], ..n[3]]));
    out
}

/// Signed per-axis entries padded to 4-D with zeros.
pub(crate) fn signed4(v: &[i64], ndim: usize, what: &'static str) -> Result<[i64; 4]> {
    if v.len() != ndim {
        return Err(KernelError::LengthMismatch {
            what,
            got: v.len(),
            expected: ndim,
        });
    }
    let mut out = [0i64; 4];
    out[4 - ndim..].copy_from_slice(v);
    Ok(out)
}

/// `x` clamped to `[0, n]`.
pub(crate) fn clamp(x: i64, n: usize) -> usize {
    x.clamp(0, n as i64) as usize
}
/// Non-negative per-axis entries padded to 4-D with zeros (`what` names them in errors).
pub(crate) fn index_list(v: &[i64], ndim: usize, what: &'static str) -> Result<[usize; 4]> {
    let signed = signed4(v, ndim, what)?;
    if v.iter().any(|&x| x < 0) {
        return Err(KernelError::Invalid(format!(
            "{what} {v:?} has a negative entry; entries must be >= 0"
        )));
    }
    Ok(signed.map(|x| x as usize))
}
