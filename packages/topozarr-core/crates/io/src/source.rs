//! Reading a region of an existing Zarr array (v3 or v2) on a local filesystem, decoded by
//! zarrs into a caller's buffer. The writer reads its level-0 tiles through this when the
//! source is a plain Zarr array: zarrs decodes straight into the output, without zarr-python's
//! per-chunk Python overhead, and the caller releases the GIL around it.
use std::sync::Arc;

use unsafe_cell_slice::UnsafeCellSlice;
use zarrs::array::data_type::{
    Float32DataType, Float64DataType, Int16DataType, Int32DataType, Int64DataType, Int8DataType,
    UInt16DataType, UInt32DataType, UInt64DataType, UInt8DataType,
};
use zarrs::array::{
    Array, ArrayBytes, ArrayBytesDecodeIntoTarget, ArrayBytesFixedDisjointView, ArrayError,
    ArraySubset, CodecOptions, DataType,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::StorageError;

use topozarr_kernel::error::{KernelError, Result, StorageKind};

/// One opened source array: its metadata and codec chain, ready for region reads.
pub struct SourceArray {
    array: Array<FilesystemStore>,
    dtype: &'static str,
    itemsize: usize,
    options: CodecOptions,
    label: String,
}

/// The numpy name of a data type topozarr reduces, or `None`.
fn numpy_name(dt: &DataType) -> Option<&'static str> {
    let names: [(bool, &'static str); 10] = [
        (dt.is::<Int8DataType>(), "int8"),
        (dt.is::<Int16DataType>(), "int16"),
        (dt.is::<Int32DataType>(), "int32"),
        (dt.is::<Int64DataType>(), "int64"),
        (dt.is::<UInt8DataType>(), "uint8"),
        (dt.is::<UInt16DataType>(), "uint16"),
        (dt.is::<UInt32DataType>(), "uint32"),
        (dt.is::<UInt64DataType>(), "uint64"),
        (dt.is::<Float32DataType>(), "float32"),
        (dt.is::<Float64DataType>(), "float64"),
    ];
    names.iter().find(|(hit, _)| *hit).map(|(_, name)| *name)
}

fn storage_error(label: &str, e: &StorageError) -> KernelError {
    let kind = match e {
        StorageError::IOError(io) => StorageKind::from_io(io),
        _ => StorageKind::Other,
    };
    KernelError::Storage {
        kind,
        message: format!("reading zarr array {label}: {e}"),
    }
}

fn array_error(label: &str, e: &ArrayError) -> KernelError {
    match e {
        ArrayError::StorageError(s) => storage_error(label, s),
        _ => KernelError::Invalid(format!("reading zarr array {label}: {e}")),
    }
}

impl SourceArray {
    /// Open the array at `path` (`""` or `"a/b"`) under the directory `root`.
    ///
    /// `concurrency` is zarrs' codec concurrency target for one read (chunks decoded in
    /// parallel on its rayon pool): the writer already reads one tile per thread, so 1 keeps
    /// two levels of parallelism from competing for the same cores.
    pub fn open(root: &str, path: &str, concurrency: usize) -> Result<SourceArray> {
        let label = format!("{root:?} path {path:?}");
        let store = FilesystemStore::new(root).map_err(|e| KernelError::Storage {
            kind: StorageKind::NotFound,
            message: format!("opening zarr store {root:?}: {e}"),
        })?;
        let node = format!("/{}", path.trim_matches('/'));
        let array = Array::open(Arc::new(store), &node)
            .map_err(|e| KernelError::Invalid(format!("opening zarr array {label}: {e}")))?;
        let dtype = numpy_name(array.data_type()).ok_or_else(|| {
            KernelError::UnsupportedDtype(format!(
                "zarr array {label} has data type {}, not one topozarr reads natively",
                array.data_type()
            ))
        })?;
        let itemsize = array.data_type().fixed_size().unwrap_or(0);
        let options = CodecOptions::default().with_concurrent_target(concurrency.max(1));
        Ok(SourceArray {
            array,
            dtype,
            itemsize,
            options,
            label,
        })
    }

    pub fn shape(&self) -> &[u64] {
        self.array.shape()
    }

    /// The numpy name of the stored data type (`"float32"`, ...).
    pub fn dtype(&self) -> &'static str {
        self.dtype
    }

    pub fn itemsize(&self) -> usize {
        self.itemsize
    }

    /// The region `start..stop` (per axis, within the shape), checked.
    pub fn region(&self, start: &[u64], stop: &[u64]) -> Result<ArraySubset> {
        let shape = self.shape();
        let ok = start.len() == shape.len()
            && stop.len() == shape.len()
            && (0..shape.len()).all(|i| start[i] <= stop[i] && stop[i] <= shape[i]);
        if !ok {
            return Err(KernelError::Invalid(format!(
                "region {start:?}..{stop:?} is not within zarr array {} of shape {shape:?}; \
                 pass one start <= stop <= size per axis",
                self.label
            )));
        }
        let ranges: Vec<_> = start.iter().zip(stop).map(|(&a, &b)| a..b).collect();
        Ok(ArraySubset::new_with_ranges(&ranges))
    }

    /// The chunk that is exactly `region`, decoded into a buffer of its own (the fill value when
    /// it is not stored), so the caller can keep it without copying it into another; `None` when
    /// `region` is not one whole chunk (then `read_into` reads it).
    pub fn read_chunk(&self, region: &ArraySubset) -> Result<Option<Vec<u8>>> {
        let grid = self.array.chunk_grid();
        let Ok(Some(indices)) = grid.chunk_indices(region.start()) else {
            return Ok(None);
        };
        match grid.subset(&indices) {
            Ok(Some(chunk)) if chunk == *region => {}
            _ => return Ok(None),
        }
        let bytes = self
            .array
            .retrieve_chunk_opt::<ArrayBytes<'static>>(&indices, &self.options)
            .map_err(|e| array_error(&self.label, &e))?;
        let raw = bytes
            .into_fixed()
            .map_err(|e| KernelError::Invalid(format!("reading zarr array {}: {e}", self.label)))?;
        Ok(Some(raw.into_owned()))
    }

    /// Decode `region` into `out`, C order, native endianness (its length must be the
    /// region's size times the item size). Missing chunks read as the array's fill value.
    pub fn read_into(&self, region: &ArraySubset, out: &mut [u8]) -> Result<()> {
        let want = region.num_elements_usize() * self.itemsize;
        if out.len() != want {
            return Err(KernelError::Invalid(format!(
                "output buffer of {} bytes for a region of {want} bytes",
                out.len()
            )));
        }
        if want == 0 {
            return Ok(());
        }
        let shape = region.shape().to_vec();
        let whole = ArraySubset::new_with_shape(shape.clone());
        // SAFETY: this one view covers the whole buffer and no other view of it exists.
        let mut view = unsafe {
            ArrayBytesFixedDisjointView::new(
                UnsafeCellSlice::new(out),
                self.itemsize,
                &shape,
                whole,
            )
        }
        .map_err(|e| KernelError::Invalid(format!("output view: {e}")))?;
        self.array
            .retrieve_array_subset_into_opt(
                region,
                ArrayBytesDecodeIntoTarget::Fixed(&mut view),
                &self.options,
            )
            .map_err(|e| array_error(&self.label, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zarrs::array::{ArrayBuilder, FillValue};
    use zarrs::storage::ReadableWritableListableStorage;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("topozarr-source-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A 5 x 7 int16 array in 2 x 3 chunks; chunk (0, 0) is never stored.
    fn write_fixture(root: &std::path::Path) -> Vec<i16> {
        let store: ReadableWritableListableStorage = Arc::new(FilesystemStore::new(root).unwrap());
        let array = ArrayBuilder::new(vec![5, 7], vec![2, 3], "int16", FillValue::from(-9i16))
            .build(store, "/a")
            .unwrap();
        array.store_metadata().unwrap();
        let values: Vec<i16> = (0..35).collect();
        let all = ArraySubset::new_with_shape(vec![5, 7]);
        array.store_array_subset(&all, values.clone()).unwrap();
        array.erase_chunk(&[0, 0]).unwrap();
        values
    }

    #[test]
    fn reads_a_region_across_chunks_with_missing_ones_as_fill() {
        let root = dir("region");
        let values = write_fixture(&root);
        let src = SourceArray::open(root.to_str().unwrap(), "a", 1).unwrap();
        assert_eq!(src.dtype(), "int16");
        assert_eq!(src.shape(), &[5, 7]);
        let region = src.region(&[1, 2], &[5, 6]).unwrap();
        let mut out = vec![0u8; 16 * 2];
        src.read_into(&region, &mut out).unwrap();
        let got: Vec<i16> = out
            .chunks_exact(2)
            .map(|b| i16::from_ne_bytes([b[0], b[1]]))
            .collect();
        let mut want = Vec::new();
        for i in 1..5 {
            for j in 2..6 {
                let missing = i < 2 && j < 3;
                want.push(if missing { -9 } else { values[i * 7 + j] });
            }
        }
        assert_eq!(got, want);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn refuses_a_region_outside_the_array() {
        let root = dir("bounds");
        write_fixture(&root);
        let src = SourceArray::open(root.to_str().unwrap(), "a", 1).unwrap();
        let err = src.region(&[0, 0], &[6, 7]).err().unwrap().to_string();
        assert!(err.contains("not within zarr array"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
