//! Whole inner chunks cut out of a block, encoded and handed on one by one, in one call
//! (`ShardBuilder.append_chunks`). The single-pass writer delivers each tile to a shard as one
//! block covering several inner chunks; cutting, encoding and writing them here, without the
//! GIL, replaces a Python loop that copied each chunk contiguous, encoded it and wrote it,
//! taking the GIL back between every step.
use numpy::ndarray::{ArrayViewD, Ix2, Slice};

use pyo3::PyErr;
use pyo3::PyResult;
use topozarr_io::assemble::ChunkAssembler;
use topozarr_kernel::error::KernelError;

use crate::errors::to_py;

/// Encode the whole inner chunks of `block` at `origins` (cell indices into `block`), in
/// order, handing each one's bytes to `emit` as soon as it is encoded (`None`: fill values
/// only), so at most one encoded chunk is held at a time.
///
/// `block` holds the values as raw bytes: the array's dtype viewed as `uint8`, so its last
/// axis is `itemsize` bytes per cell. Each chunk is copied out in C order (rows at a time
/// when the last axis is contiguous) and encoded with the array's inner codecs.
pub fn encode_each(
    asm: &ChunkAssembler,
    block: &ArrayViewD<'_, u8>,
    origins: &[Vec<usize>],
    mut emit: impl FnMut(Option<Vec<u8>>) -> PyResult<()>,
) -> PyResult<()> {
    let itemsize = asm.codec().itemsize();
    let chunk: Vec<usize> = asm.chunk_shape().iter().map(|&c| c as usize).collect();
    let last = chunk
        .len()
        .checked_sub(1)
        .ok_or_else(|| invalid("a 0-d array".into()))?;
    // The chunk's shape in the block's units (bytes along the last axis).
    let mut extent = chunk.clone();
    extent[last] *= itemsize;
    if block.ndim() != chunk.len() || block.shape()[last] % itemsize != 0 {
        return Err(invalid(format!(
            "a block of shape {:?} (bytes along the last axis) does not hold {itemsize}-byte \
             cells of {}-d chunks",
            block.shape(),
            chunk.len()
        )));
    }
    let mut raw = Vec::with_capacity(extent.iter().product());
    for origin in origins {
        let start = start_in_block(origin, &extent, block.shape(), itemsize, &chunk)?;
        let view = block.slice_each_axis(|ax| {
            let i = ax.axis.index();
            Slice::from(start[i]..start[i] + extent[i])
        });
        raw.clear();
        copy_c_order(view, &mut raw);
        emit(asm.encode_chunk_untrimmed(&raw).map_err(to_py)?)?;
    }
    Ok(())
}

/// Append `view`'s bytes to `out` in C order, a row at a time. Rows come from fixed-dimension
/// views: iterating lanes of a dynamic-dimension view costs about a microsecond per row,
/// which over a tile's rows cost more than the copy itself.
fn copy_c_order(view: ArrayViewD<'_, u8>, out: &mut Vec<u8>) {
    if let Some(all) = view.as_slice() {
        out.extend_from_slice(all);
        return;
    }
    match view.view().into_dimensionality::<Ix2>() {
        Ok(rows) => {
            for row in rows.rows() {
                match row.as_slice() {
                    Some(bytes) => out.extend_from_slice(bytes),
                    None => out.extend(row.iter().copied()),
                }
            }
        }
        // 1-d: one (strided) row; more than 2-d: one 2-d view after another.
        Err(_) if view.ndim() < 2 => out.extend(view.iter().copied()),
        Err(_) => {
            for sub in view.outer_iter() {
                copy_c_order(sub, out);
            }
        }
    }
}

/// `origin` (cells) as a start in the block's units, checked to leave a whole chunk inside it.
fn start_in_block(
    origin: &[usize],
    extent: &[usize],
    shape: &[usize],
    itemsize: usize,
    chunk: &[usize],
) -> PyResult<Vec<usize>> {
    let last = extent.len() - 1;
    let start: Vec<usize> = origin
        .iter()
        .enumerate()
        .map(|(i, &o)| if i == last { o * itemsize } else { o })
        .collect();
    let fits = origin.len() == extent.len()
        && start
            .iter()
            .zip(extent)
            .zip(shape)
            .all(|((s, e), n)| s + e <= *n);
    if !fits {
        return Err(invalid(format!(
            "an inner chunk of {chunk:?} cells at {origin:?} is not inside the block of \
             {:?} cells",
            cells(shape, itemsize)
        )));
    }
    Ok(start)
}

fn cells(shape: &[usize], itemsize: usize) -> Vec<usize> {
    let mut out = shape.to_vec();
    if let Some(last) = out.last_mut() {
        *last /= itemsize;
    }
    out
}

fn invalid(message: String) -> PyErr {
    to_py(KernelError::Invalid(message))
}
