//! Encoding one whole shard (one chunk of the array's outer grid) with the array's own codec
//! chain, as its `zarr.json` declares it: `sharding_indexed` with its inner codecs and index
//! codecs, or a plain chain. The `zarrs` crate does the encoding; this module only pads edge
//! shards and decides what to store.
use std::borrow::Cow;
use std::sync::Arc;

use zarrs::array::{Array, ArrayBytes, ArrayMetadata, ArrayToBytesCodecTraits, CodecOptions};

use topozarr_kernel::error::{KernelError, Result};

/// An array's outer grid and codec chain, detached from any storage.
pub struct ShardCodec {
    array: Array<()>,
    itemsize: usize,
    /// Shape of every outer chunk (the grid is regular; edge chunks are padded to it).
    shard: Vec<u64>,
}

fn codec_error(path: &str, e: impl std::fmt::Display) -> KernelError {
    KernelError::Invalid(format!("array {path:?}: {e}"))
}

impl ShardCodec {
    /// From the array's `zarr.json` document (as zarr-python wrote it) and its path.
    pub fn from_json(path: &str, json: &[u8]) -> Result<ShardCodec> {
        let metadata: ArrayMetadata =
            serde_json::from_slice(json).map_err(|e| codec_error(path, e))?;
        let node = format!("/{}", path.trim_matches('/'));
        let array = Array::new_with_metadata(Arc::new(()), &node, metadata)
            .map_err(|e| codec_error(path, e))?;
        let itemsize = array.data_type().fixed_size().ok_or_else(|| {
            codec_error(path, "variable-size data types are not written natively")
        })?;
        let zeros = vec![0u64; array.dimensionality()];
        let shard = array
            .chunk_shape(&zeros)
            .map_err(|e| codec_error(path, e))?
            .iter()
            .map(|n| n.get())
            .collect();
        Ok(ShardCodec {
            array,
            itemsize,
            shard,
        })
    }

    pub fn shape(&self) -> &[u64] {
        self.array.shape()
    }

    pub fn shard_shape(&self) -> &[u64] {
        &self.shard
    }

    pub fn itemsize(&self) -> usize {
        self.itemsize
    }

    /// The array (metadata and codecs only, no storage).
    pub fn array(&self) -> &Array<()> {
        &self.array
    }

    /// The store key of shard `indices` (relative to the store root).
    pub fn key(&self, indices: &[u64]) -> String {
        self.array
            .chunk_key(indices)
            .as_str()
            .trim_start_matches('/')
            .to_string()
    }

    /// The in-bounds extent of shard `indices` (smaller than the shard at the array's edge).
    pub fn extent(&self, indices: &[u64]) -> Result<Vec<u64>> {
        let grid = self.array.chunk_grid_shape();
        if indices.len() != grid.len() || indices.iter().zip(grid).any(|(i, n)| i >= n) {
            return Err(KernelError::Invalid(format!(
                "shard index {indices:?} is outside the grid {grid:?} of array {}",
                self.array.path()
            )));
        }
        Ok(indices
            .iter()
            .zip(&self.shard)
            .zip(self.array.shape())
            .map(|((&i, &s), &n)| s.min(n - i * s))
            .collect())
    }

    /// Encode shard `indices` from `data`, the C-ordered bytes of its in-bounds extent.
    /// `None` when every value is the fill value (the shard's key should then be deleted,
    /// as zarr-python does with `write_empty_chunks=False`).
    pub fn encode(&self, indices: &[u64], data: &[u8]) -> Result<Option<Vec<u8>>> {
        let extent = self.extent(indices)?;
        let expected = extent.iter().product::<u64>() as usize * self.itemsize;
        if data.len() != expected {
            return Err(KernelError::Invalid(format!(
                "shard {indices:?} of array {} covers {extent:?} cells ({expected} bytes), got {} bytes",
                self.array.path(),
                data.len()
            )));
        }
        let full: Cow<[u8]> = if extent == self.shard {
            Cow::Borrowed(data)
        } else {
            Cow::Owned(pad(
                data,
                &extent,
                &self.shard,
                self.array.fill_value().as_ne_bytes(),
            ))
        };
        let bytes = ArrayBytes::new_flen(full);
        if bytes.is_fill_value(self.array.fill_value()) {
            return Ok(None);
        }
        let shape = self
            .array
            .chunk_shape(indices)
            .map_err(|e| codec_error(&self.key(indices), e))?;
        let encoded = self
            .array
            .codecs()
            .encode(
                bytes,
                &shape,
                self.array.data_type(),
                self.array.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| codec_error(&self.key(indices), e))?;
        Ok(Some(encoded.into_owned()))
    }
}

/// `data` (C order, shape `extent`) placed at the origin of a `shard`-shaped buffer filled with
/// `fill` (one element's bytes).
fn pad(data: &[u8], extent: &[u64], shard: &[u64], fill: &[u8]) -> Vec<u8> {
    let item = fill.len();
    let cells: usize = shard.iter().product::<u64>() as usize;
    let mut out = fill.repeat(cells);
    let nd = extent.len();
    let row = extent[nd - 1] as usize * item;
    if row == 0 {
        return out;
    }
    let rows = data.len() / row;
    // Walk the rows of `data`; each lands at the same leading index in `out`.
    let mut index = vec![0u64; nd.saturating_sub(1)];
    for r in 0..rows {
        let mut offset = 0usize;
        for (axis, &i) in index.iter().enumerate() {
            offset = (offset + i as usize) * shard[axis + 1] as usize;
        }
        if nd == 1 {
            offset = 0;
        }
        let dst = offset * item;
        out[dst..dst + row].copy_from_slice(&data[r * row..(r + 1) * row]);
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < extent[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(shape: &str, shard: &str, inner: &str, fill: &str, dtype: &str) -> String {
        format!(
            r#"{{"zarr_format":3,"node_type":"array","shape":{shape},"data_type":"{dtype}",
            "chunk_grid":{{"name":"regular","configuration":{{"chunk_shape":{shard}}}}},
            "chunk_key_encoding":{{"name":"default","configuration":{{"separator":"/"}}}},
            "fill_value":{fill},
            "codecs":[{{"name":"sharding_indexed","configuration":{{"chunk_shape":{inner},
              "codecs":[{{"name":"bytes","configuration":{{"endian":"little"}}}},
                        {{"name":"zstd","configuration":{{"level":1,"checksum":false}}}}],
              "index_codecs":[{{"name":"bytes","configuration":{{"endian":"little"}}}},
                              {{"name":"crc32c"}}],
              "index_location":"end"}}}}],
            "attributes":{{}},"dimension_names":["y","x"]}}"#
        )
    }

    #[test]
    fn pads_edges_with_the_fill_value() {
        // extent 2x3 inside a 3x4 shard, u16 fill 9
        let data: Vec<u8> = (1u16..=6).flat_map(|v| v.to_ne_bytes()).collect();
        let out = pad(&data, &[2, 3], &[3, 4], &9u16.to_ne_bytes());
        let vals: Vec<u16> = out
            .chunks(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(vals, vec![1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn pads_three_dims() {
        let data: Vec<u8> = (0u8..8).collect(); // 2x2x2
        let out = pad(&data, &[2, 2, 2], &[2, 3, 3], &[255]);
        assert_eq!(out.len(), 18);
        assert_eq!(&out[0..3], &[0, 1, 255]);
        assert_eq!(&out[3..6], &[2, 3, 255]);
        assert_eq!(&out[9..12], &[4, 5, 255]);
        assert_eq!(&out[12..15], &[6, 7, 255]);
        assert!(out[6..9].iter().chain(&out[15..18]).all(|&v| v == 255));
    }

    #[test]
    fn keys_extents_and_fill_shards() {
        let m = meta("[10,7]", "[4,4]", "[2,2]", "0", "uint16");
        let c = ShardCodec::from_json("0/elev", m.as_bytes()).unwrap();
        assert_eq!(c.key(&[2, 1]), "0/elev/c/2/1");
        assert_eq!(c.extent(&[2, 1]).unwrap(), vec![2, 3]);
        assert!(c.extent(&[3, 0]).is_err());
        assert!(c.encode(&[2, 1], &[0u8; 12]).unwrap().is_none());
        let some = c.encode(&[2, 1], &[1u8; 12]).unwrap().unwrap();
        // index at the end: 4 inner chunks x (offset, nbytes) u64 + crc32c
        assert!(some.len() > 4 * 16 + 4);
        assert!(c.encode(&[0, 0], &[1u8; 12]).is_err(), "wrong byte count");
    }

    #[test]
    fn nan_fill_shards_are_detected() {
        let m = meta("[4,4]", "[4,4]", "[2,2]", "\"NaN\"", "float32");
        let c = ShardCodec::from_json("a", m.as_bytes()).unwrap();
        let nan: Vec<u8> = (0..16).flat_map(|_| f32::NAN.to_ne_bytes()).collect();
        assert!(c.encode(&[0, 0], &nan).unwrap().is_none());
    }
}
