//! Reading `torch.save` checkpoints (`.pth`) into a [`StateDict`] of float tensors.
//!
//! Two layouts exist (PyTorch `torch/serialization.py`):
//! - **legacy** (before PyTorch 1.6, and `_use_new_zipfile_serialization=False`): five pickles
//!   back to back — magic number, protocol version 1001, system info (endianness), the state
//!   dict, the list of storage keys — followed by every storage in that key order as an 8-byte
//!   little-endian element count and the raw little-endian elements. The EfficientNet-Lite0
//!   weights ocular uses are in this layout.
//! - **zip** (the default since 1.6): `<name>/data.pkl` holds the state dict pickle and each
//!   storage is the raw file `<name>/data/<key>`. It uses the same pickle vocabulary, so
//!   supporting it costs a few lines.
//!
//! Tensors keep torch's view geometry (shape, strides, offset into a shared storage) so that a
//! transposed or sliced parameter is read exactly as torch would; [`TorchTensor::to_vec`]
//! materialises the row-major values. All element types are widened or narrowed to `f32`:
//! integer tensors in state dicts are counters such as `num_batches_tracked`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::TorchError;
use super::pickle::{self, StorageRef, StorageType, TensorRef, Value};

/// The number `torch.save` writes first in a legacy file (`MAGIC_NUMBER` in serialization.py).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `PROTOCOL_VERSION` in serialization.py.
const LEGACY_PROTOCOL: i64 = 1001;

/// One tensor of a state dict: a strided view of a shared `f32` storage.
#[derive(Debug, Clone)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    /// Element offset of the first value in `storage`.
    pub offset: usize,
    pub storage: Arc<[f32]>,
}

impl TorchTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values in row-major (C) order, whatever the strides.
    pub fn to_vec(&self) -> Vec<f32> {
        let n = self.numel();
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return out;
        }
        let mut index = vec![0usize; self.shape.len()];
        for _ in 0..n {
            let at: usize = self.offset + index.iter().zip(&self.strides).map(|(i, s)| i * s).sum::<usize>();
            out.push(self.storage[at]);
            // Odometer increment over the shape, last axis fastest.
            for axis in (0..index.len()).rev() {
                index[axis] += 1;
                if index[axis] < self.shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        out
    }
}

/// A state dict in file order.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    entries: Vec<(String, TorchTensor)>,
    index: HashMap<String, usize>,
}

impl StateDict {
    /// Reads a legacy or zip `.pth` file.
    pub fn load(path: &Path) -> Result<Self, TorchError> {
        let bytes = std::fs::read(path).map_err(|source| TorchError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes)
    }

    /// Parses the bytes of a `.pth` file, choosing the layout from its first bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TorchError> {
        if bytes.starts_with(b"PK\x03\x04") { read_zip(bytes) } else { read_legacy(bytes) }
    }

    pub fn get(&self, name: &str) -> Option<&TorchTensor> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    /// The tensor called `name`, checked to have `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<&TorchTensor, TorchError> {
        let t = self.get(name).ok_or_else(|| TorchError::MissingTensor { name: name.to_string() })?;
        if t.shape != shape {
            return Err(TorchError::Shape { name: name.to_string(), expected: shape.to_vec(), found: t.shape.clone() });
        }
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &TorchTensor)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn read_legacy(bytes: &[u8]) -> Result<StateDict, TorchError> {
    let (magic, pos) = pickle::load(bytes, 0)?;
    if !matches!(&magic, Value::BigInt(b) if b.as_slice() == LEGACY_MAGIC) {
        return Err(TorchError::NotTorch);
    }
    let (protocol, pos) = pickle::load(bytes, pos)?;
    if !matches!(protocol, Value::Int(LEGACY_PROTOCOL)) {
        return Err(TorchError::Format("unknown legacy protocol version"));
    }
    let (sys_info, pos) = pickle::load(bytes, pos)?;
    if !little_endian(&sys_info) {
        return Err(TorchError::Format("big-endian checkpoints are not supported"));
    }
    let (state, pos) = pickle::load(bytes, pos)?;
    let (keys, mut pos) = pickle::load(bytes, pos)?;
    let refs = collect_tensors(&state)?;
    let declared = declared_storages(&refs)?;

    let Value::List(keys) = keys else {
        return Err(TorchError::Format("storage key list is not a list"));
    };
    let mut storages = HashMap::new();
    for key in keys.borrow().iter() {
        let Value::Str(key) = key else {
            return Err(TorchError::Format("storage key is not a string"));
        };
        let storage = declared.get(key.as_str()).ok_or(TorchError::Format("storage key without tensor"))?;
        let count = bytes.get(pos..pos + 8).ok_or(TorchError::Truncated)?;
        let count = u64::from_le_bytes(count.try_into().map_err(|_| TorchError::Truncated)?);
        if count != storage.numel {
            return Err(TorchError::Format("storage length differs from its declaration"));
        }
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(storage.dtype.element_size()))
            .ok_or(TorchError::Truncated)?;
        let start = pos + 8;
        let raw = bytes.get(start..start.saturating_add(len)).ok_or(TorchError::Truncated)?;
        storages.insert(key.clone(), decode(raw, storage.dtype));
        pos = start + len;
    }
    assemble(refs, &storages)
}

fn read_zip(bytes: &[u8]) -> Result<StateDict, TorchError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    // Every record sits under one folder named after the file (`archive/` by default).
    let pkl = archive
        .file_names()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_string)
        .ok_or(TorchError::Format("zip checkpoint without data.pkl"))?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    if let Ok(order) = read_entry(&mut archive, &format!("{prefix}byteorder"))
        && order != b"little"
    {
        return Err(TorchError::Format("big-endian checkpoints are not supported"));
    }
    let (state, _) = pickle::load(&read_entry(&mut archive, &pkl)?, 0)?;
    let refs = collect_tensors(&state)?;
    let mut storages = HashMap::new();
    for (key, storage) in declared_storages(&refs)? {
        let raw = read_entry(&mut archive, &format!("{prefix}data/{key}"))?;
        let expected = usize::try_from(storage.numel).ok().and_then(|n| n.checked_mul(storage.dtype.element_size()));
        if expected != Some(raw.len()) {
            return Err(TorchError::Format("storage length differs from its declaration"));
        }
        storages.insert(key.to_string(), decode(&raw, storage.dtype));
    }
    assemble(refs, &storages)
}

fn read_entry(archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>, TorchError> {
    let mut file = archive.by_name(name)?;
    let mut out = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
    file.read_to_end(&mut out).map_err(|source| TorchError::Io { path: name.into(), source })?;
    Ok(out)
}

fn little_endian(sys_info: &Value) -> bool {
    let Value::Dict(d) = sys_info else { return false };
    d.borrow().iter().any(|(k, v)| matches!((k, v), (Value::Str(k), Value::Bool(true)) if k == "little_endian"))
}

/// The `name -> tensor` pairs of the top-level dict; anything else in it is an error.
fn collect_tensors(state: &Value) -> Result<Vec<(String, TensorRef)>, TorchError> {
    let Value::Dict(d) = state else {
        return Err(TorchError::Format("checkpoint is not a state dict"));
    };
    d.borrow()
        .iter()
        .map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Ok((k.clone(), (**t).clone())),
            _ => Err(TorchError::Format("state dict entry is not `name: tensor`")),
        })
        .collect()
}

/// One declaration per storage key; tensors sharing a storage must agree on it.
fn declared_storages(refs: &[(String, TensorRef)]) -> Result<HashMap<&str, &StorageRef>, TorchError> {
    let mut out: HashMap<&str, &StorageRef> = HashMap::new();
    for (_, t) in refs {
        if let Some(prev) = out.insert(&t.storage.key, &t.storage)
            && prev != &t.storage
        {
            return Err(TorchError::Format("one storage key declared twice differently"));
        }
    }
    Ok(out)
}

fn decode(raw: &[u8], dtype: StorageType) -> Arc<[f32]> {
    match dtype {
        StorageType::Float => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        StorageType::Int => raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
        StorageType::Double => {
            raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect()
        }
        StorageType::Long => {
            raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect()
        }
    }
}

/// Attaches storages to tensor views, checking every view stays inside its storage.
fn assemble(refs: Vec<(String, TensorRef)>, storages: &HashMap<String, Arc<[f32]>>) -> Result<StateDict, TorchError> {
    let mut sd = StateDict::default();
    for (name, t) in refs {
        let storage = storages.get(&t.storage.key).ok_or(TorchError::Format("tensor refers to a missing storage"))?;
        let usize_of = |v: u64| usize::try_from(v).map_err(|_| TorchError::Format("tensor geometry overflows"));
        let shape = t.shape.iter().map(|&v| usize_of(v)).collect::<Result<Vec<_>, _>>()?;
        let strides = t.strides.iter().map(|&v| usize_of(v)).collect::<Result<Vec<_>, _>>()?;
        let offset = usize_of(t.offset)?;
        if shape.iter().all(|&d| d > 0) {
            let last = shape
                .iter()
                .zip(&strides)
                .try_fold(offset, |acc, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x)));
            if last.is_none_or(|l| l >= storage.len()) {
                return Err(TorchError::OutOfBounds { name });
            }
        }
        let tensor = TorchTensor { shape, strides, offset, storage: Arc::clone(storage) };
        sd.index.insert(name.clone(), sd.entries.len());
        sd.entries.push((name, tensor));
    }
    Ok(sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> StateDict {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference").join(name);
        StateDict::load(&path).unwrap()
    }

    /// Values written by `scripts/torch_tiny_fixture.py`: `base = arange(12).reshape(3, 4) / 4`.
    fn check_tiny(sd: &StateDict) {
        let names: Vec<&str> = sd.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["base", "base_t", "row", "double", "count"]);
        let base: Vec<f32> = (0..12).map(|i| i as f32 / 4.0).collect();
        assert_eq!(sd.tensor("base", &[3, 4]).unwrap().to_vec(), base);
        let t = sd.tensor("base_t", &[4, 3]).unwrap();
        assert_eq!(t.strides, [1, 4]);
        let transposed: Vec<f32> = (0..12).map(|i| base[(i % 3) * 4 + i / 3]).collect();
        assert_eq!(t.to_vec(), transposed);
        let row = sd.tensor("row", &[4]).unwrap();
        assert_eq!(row.offset, 4);
        assert_eq!(row.to_vec(), [1.0, 1.25, 1.5, 1.75]);
        assert!(Arc::ptr_eq(&row.storage, &sd.get("base").unwrap().storage));
        assert_eq!(sd.tensor("double", &[2]).unwrap().to_vec(), [0.5, -1.25]);
        assert_eq!(sd.tensor("count", &[]).unwrap().to_vec(), [7.0]);
    }

    #[test]
    fn reads_legacy_format() {
        check_tiny(&fixture("torch_tiny_legacy.pth"));
    }

    #[test]
    fn reads_zip_format() {
        check_tiny(&fixture("torch_tiny_zip.pth"));
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference/torch_tiny_legacy.pth");
        let bytes = std::fs::read(path).unwrap();
        let err = StateDict::from_bytes(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(matches!(err, TorchError::Truncated), "{err}");
        // A pickle of a plain int is not a torch file.
        let err = StateDict::from_bytes(b"\x80\x02K\x01.").unwrap_err();
        assert!(matches!(err, TorchError::NotTorch), "{err}");
        let err = StateDict::from_bytes(b"").unwrap_err();
        assert!(matches!(err, TorchError::Pickle(_)), "{err}");
    }

    #[test]
    fn shape_mismatch_names_the_tensor() {
        let sd = fixture("torch_tiny_zip.pth");
        let err = sd.tensor("base", &[4, 3]).unwrap_err();
        assert!(err.to_string().contains("base"), "{err}");
        assert!(matches!(sd.tensor("nope", &[1]), Err(TorchError::MissingTensor { .. })));
    }
}
