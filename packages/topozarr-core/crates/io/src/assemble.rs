//! Building one shard inner chunk by inner chunk, for writers that fill a shard over several
//! calls: each inner chunk is encoded as soon as it is complete and only its encoded bytes are
//! kept, so a shard under construction costs its compressed size plus the chunks still being
//! filled, not a whole decoded shard. `assemble` then writes the `sharding_indexed` layout:
//! the encoded chunks in C order of their position in the shard and the index, encoded with
//! the array's index codecs, at the start or the end as `zarr.json` declares. Chunks that hold
//! only the fill value are left out (index entry `u64::MAX`), as zarr-python and zarrs do.
use std::borrow::Cow;
use std::num::NonZeroU64;
use std::sync::Arc;

use zarrs::array::codec::{CodecChain, ShardingCodecConfigurationV1, ShardingIndexLocation};
use zarrs::array::{
    data_type, ArrayBytes, ArrayToBytesCodecTraits, BytesRepresentation, CodecOptions, FillValue,
};

use crate::shard::ShardCodec;
use topozarr_kernel::error::{KernelError, Result};

/// An array's sharding codec, split into what encodes one inner chunk and what encodes the
/// shard index.
pub struct ChunkAssembler {
    codec: ShardCodec,
    inner: Arc<CodecChain>,
    index: Arc<CodecChain>,
    location: ShardingIndexLocation,
    chunk: Vec<NonZeroU64>,
    /// Inner chunks per shard along each axis.
    grid: Vec<u64>,
    /// Bytes of the encoded index (the index codecs must have a fixed size).
    index_size: usize,
}

fn invalid(path: &str, e: impl std::fmt::Display) -> KernelError {
    KernelError::Invalid(format!("array {path:?}: {e}"))
}

/// The `sharding_indexed` configuration of a `zarr.json` whose only codec is sharding.
fn sharding_configuration(path: &str, json: &[u8]) -> Result<ShardingCodecConfigurationV1> {
    let doc: serde_json::Value = serde_json::from_slice(json).map_err(|e| invalid(path, e))?;
    let codecs = doc
        .get("codecs")
        .and_then(|c| c.as_array())
        .ok_or_else(|| invalid(path, "zarr.json has no codecs list"))?;
    let [codec] = codecs.as_slice() else {
        return Err(invalid(
            path,
            "not a sharded array (one sharding_indexed codec)",
        ));
    };
    if codec.get("name").and_then(|n| n.as_str()) != Some("sharding_indexed") {
        return Err(invalid(
            path,
            "not a sharded array (one sharding_indexed codec)",
        ));
    }
    let config = codec
        .get("configuration")
        .cloned()
        .ok_or_else(|| invalid(path, "sharding_indexed has no configuration"))?;
    serde_json::from_value(config).map_err(|e| invalid(path, e))
}

impl ChunkAssembler {
    /// From the array's `zarr.json` document and its path; an error when the array is not
    /// sharded or its shard is not a whole number of inner chunks.
    pub fn from_json(path: &str, json: &[u8]) -> Result<ChunkAssembler> {
        let codec = ShardCodec::from_json(path, json)?;
        let config = sharding_configuration(path, json)?;
        let inner = CodecChain::from_metadata(&config.codecs).map_err(|e| invalid(path, e))?;
        let index =
            CodecChain::from_metadata(&config.index_codecs).map_err(|e| invalid(path, e))?;
        let chunk: Vec<NonZeroU64> = config.chunk_shape.to_vec();
        if chunk.len() != codec.shard_shape().len()
            || chunk
                .iter()
                .zip(codec.shard_shape())
                .any(|(c, s)| s % c.get() != 0)
        {
            return Err(invalid(path, "inner chunks do not tile the shard"));
        }
        let grid: Vec<u64> = chunk
            .iter()
            .zip(codec.shard_shape())
            .map(|(c, s)| s / c.get())
            .collect();
        let index_shape = index_shape(&grid);
        let index_size = match index
            .encoded_representation(
                &index_shape,
                &data_type::uint64(),
                &FillValue::from(u64::MAX),
            )
            .map_err(|e| invalid(path, e))?
        {
            BytesRepresentation::FixedSize(n) => n as usize,
            _ => {
                return Err(invalid(
                    path,
                    "the shard index codecs must have a fixed size",
                ))
            }
        };
        Ok(ChunkAssembler {
            codec,
            inner: Arc::new(inner),
            index: Arc::new(index),
            location: config.index_location,
            chunk,
            grid,
            index_size,
        })
    }

    pub fn codec(&self) -> &ShardCodec {
        &self.codec
    }

    pub fn chunk_shape(&self) -> Vec<u64> {
        self.chunk.iter().map(|c| c.get()).collect()
    }

    /// Inner chunks per shard along each axis.
    pub fn grid(&self) -> &[u64] {
        &self.grid
    }

    /// The C-order position of inner chunk `indices` in its shard.
    pub fn position(&self, indices: &[u64]) -> Result<usize> {
        if indices.len() != self.grid.len() || indices.iter().zip(&self.grid).any(|(i, n)| i >= n) {
            return Err(KernelError::Invalid(format!(
                "inner chunk {indices:?} is outside the shard's chunk grid {:?}",
                self.grid
            )));
        }
        Ok(indices
            .iter()
            .zip(&self.grid)
            .fold(0u64, |acc, (&i, &n)| acc * n + i) as usize)
    }

    /// Encode one whole inner chunk (C-ordered bytes of the full chunk shape, cells past the
    /// array's edge set to anything); `None` when it holds only the fill value.
    pub fn encode_chunk(&self, data: &[u8]) -> Result<Option<Vec<u8>>> {
        // Codecs allocate for the worst case (about the raw size); an open shard holds its
        // chunks until it is finished, so keep only the bytes.
        Ok(self.encode_chunk_untrimmed(data)?.map(|mut encoded| {
            encoded.shrink_to_fit();
            encoded
        }))
    }

    /// `encode_chunk` without trimming the allocation, for a caller that writes the bytes
    /// at once and drops them (trimming would copy them).
    pub fn encode_chunk_untrimmed(&self, data: &[u8]) -> Result<Option<Vec<u8>>> {
        let cells: u64 = self.chunk.iter().map(|c| c.get()).product();
        let expected = cells as usize * self.codec.itemsize();
        if data.len() != expected {
            return Err(KernelError::Invalid(format!(
                "an inner chunk of {:?} is {expected} bytes, got {}",
                self.chunk_shape(),
                data.len()
            )));
        }
        let array = self.codec.array();
        let bytes = ArrayBytes::new_flen(Cow::Borrowed(data));
        if bytes.is_fill_value(array.fill_value()) {
            return Ok(None);
        }
        let encoded = self
            .inner
            .encode(
                bytes,
                &self.chunk,
                array.data_type(),
                array.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| invalid(array.path().as_str(), e))?;
        Ok(Some(encoded.into_owned()))
    }

    /// The shard from its encoded inner chunks (C order of position, `None` for fill-only or
    /// missing ones); `None` when there is none at all (the shard's key should be deleted).
    pub fn assemble(&self, chunks: Vec<Option<Vec<u8>>>) -> Result<Option<Vec<u8>>> {
        let Some(index) = self.index_for(&chunks)? else {
            return Ok(None);
        };
        let mut shard = vec![0u8; self.shard_len(&chunks, &index)];
        self.write_shard(chunks, &index, &mut shard);
        Ok(Some(shard))
    }

    /// The encoded index of a shard of `chunks`, or `None` when every chunk is left out.
    pub fn index_for(&self, chunks: &[Option<Vec<u8>>]) -> Result<Option<Vec<u8>>> {
        let n: u64 = self.grid.iter().product();
        if chunks.len() != n as usize {
            return Err(KernelError::Invalid(format!(
                "a shard holds {n} inner chunks, got {}",
                chunks.len()
            )));
        }
        if chunks.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut offsets = vec![u64::MAX; chunks.len() * 2];
        let mut at = match self.location {
            ShardingIndexLocation::Start => self.index_size as u64,
            _ => 0,
        };
        for (i, chunk) in chunks.iter().enumerate() {
            if let Some(c) = chunk {
                offsets[2 * i] = at;
                offsets[2 * i + 1] = c.len() as u64;
                at += c.len() as u64;
            }
        }
        self.encode_index(offsets).map(Some)
    }

    /// Bytes of the shard of `chunks` with its encoded `index`.
    pub fn shard_len(&self, chunks: &[Option<Vec<u8>>], index: &[u8]) -> usize {
        chunks.iter().flatten().map(Vec::len).sum::<usize>() + index.len()
    }

    /// Write the shard into `out` (`shard_len` bytes), freeing each chunk once copied: a
    /// caller fills a buffer it owns (a Python `bytes`) and the shard is never held twice.
    pub fn write_shard(&self, chunks: Vec<Option<Vec<u8>>>, index: &[u8], out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if matches!(self.location, ShardingIndexLocation::Start) {
            put(index);
        }
        for c in chunks.into_iter().flatten() {
            put(&c);
        }
        if !matches!(self.location, ShardingIndexLocation::Start) {
            put(index);
        }
    }

    fn encode_index(&self, offsets: Vec<u64>) -> Result<Vec<u8>> {
        let raw: Vec<u8> = offsets.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let path = self.codec.array().path().as_str().to_string();
        let encoded = self
            .index
            .encode(
                ArrayBytes::new_flen(Cow::Owned(raw)),
                &index_shape(&self.grid),
                &data_type::uint64(),
                &FillValue::from(u64::MAX),
                &CodecOptions::default(),
            )
            .map_err(|e| invalid(&path, e))?
            .into_owned();
        if encoded.len() != self.index_size {
            return Err(invalid(&path, "the encoded shard index changed size"));
        }
        Ok(encoded)
    }
}

/// The index array's shape: the chunk grid plus a trailing (offset, nbytes) axis.
fn index_shape(grid: &[u64]) -> Vec<NonZeroU64> {
    grid.iter()
        .chain(std::iter::once(&2))
        .map(|&n| NonZeroU64::new(n).expect("a shard holds at least one inner chunk per axis"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(location: &str) -> String {
        format!(
            r#"{{"zarr_format":3,"node_type":"array","shape":[6,4],"data_type":"uint16",
            "chunk_grid":{{"name":"regular","configuration":{{"chunk_shape":[4,4]}}}},
            "chunk_key_encoding":{{"name":"default","configuration":{{"separator":"/"}}}},
            "fill_value":0,
            "codecs":[{{"name":"sharding_indexed","configuration":{{"chunk_shape":[2,2],
              "codecs":[{{"name":"bytes","configuration":{{"endian":"little"}}}},
                        {{"name":"zstd","configuration":{{"level":1,"checksum":false}}}}],
              "index_codecs":[{{"name":"bytes","configuration":{{"endian":"little"}}}},
                              {{"name":"crc32c"}}],
              "index_location":"{location}"}}}}],
            "attributes":{{}},"dimension_names":["y","x"]}}"#
        )
    }

    fn decode(a: &ChunkAssembler, shard: &[u8]) -> Vec<u8> {
        let array = a.codec().array();
        let shape: Vec<NonZeroU64> = a
            .codec()
            .shard_shape()
            .iter()
            .map(|&n| NonZeroU64::new(n).unwrap())
            .collect();
        array
            .codecs()
            .decode(
                Cow::Borrowed(shard),
                &shape,
                array.data_type(),
                array.fill_value(),
                &CodecOptions::default(),
            )
            .unwrap()
            .into_fixed()
            .unwrap()
            .into_owned()
    }

    #[test]
    fn assembled_shards_decode_like_whole_ones() {
        for location in ["start", "end"] {
            let a = ChunkAssembler::from_json("a", meta(location).as_bytes()).unwrap();
            assert_eq!(a.grid(), &[2, 2]);
            let chunk = |v: u16| -> Vec<u8> { (0..4).flat_map(|_| v.to_le_bytes()).collect() };
            let parts = vec![
                a.encode_chunk(&chunk(1)).unwrap(),
                a.encode_chunk(&chunk(0)).unwrap(),
                None,
                a.encode_chunk(&chunk(7)).unwrap(),
            ];
            assert!(parts[1].is_none(), "fill-only chunks are left out");
            let shard = a.assemble(parts).unwrap().unwrap();
            let values: Vec<u16> = decode(&a, &shard)
                .chunks(2)
                .map(|c| u16::from_ne_bytes([c[0], c[1]]))
                .collect();
            assert_eq!(
                values,
                vec![1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 7, 7, 0, 0, 7, 7],
                "{location}"
            );
            assert!(a.assemble(vec![None, None, None, None]).unwrap().is_none());
        }
    }

    #[test]
    fn rejects_bad_positions_and_sizes() {
        let a = ChunkAssembler::from_json("a", meta("end").as_bytes()).unwrap();
        assert_eq!(a.position(&[1, 0]).unwrap(), 2);
        assert!(a.position(&[2, 0]).is_err());
        assert!(a.encode_chunk(&[1u8; 6]).is_err());
        assert!(a.assemble(vec![None]).is_err());
    }
}
