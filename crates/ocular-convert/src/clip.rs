//! CLIP towers from the ONNX exports users download: find them, read what they take and give,
//! and (where the machine has a network and the user names a source) download them.
//!
//! No CLIP weights ship in any package registry, so ocular never fetches them on its own:
//! `ocular models import-clip DIR` takes an export the user already has (transformers.js
//! layout `onnx/vision_model*.onnx` + `onnx/text_model*.onnx`, fastembed's one `model.onnx`
//! per tower, or any file names), and `ocular models fetch clip` downloads the transformers.js
//! layout from a base URL the user gives (`--clip-url` / `OCULAR_CLIP_URL`; there is no
//! default, and no hub address is written anywhere in ocular).
//!
//! Towers are told apart by their graph inputs, not their names: a float 4-D input is the
//! image tower, an int64 token input the text tower. The graph header (inputs, outputs,
//! metadata) is read by walking the protobuf and seeking past the weights, so a 350 MB export
//! is never held in memory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use ocular_core::TensorSpec;
use prost::Message;

use crate::onnx::proto::{StringStringEntryProto, ValueInfoProto, data_type};

/// Which graph to prefer when an export ships both precisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Dynamically quantised weights: a quarter of the memory, for 512 MB hosts.
    Int8,
    Float32,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Float32 => "float32",
        }
    }

    /// transformers.js file-name suffix of this precision.
    fn suffix(self) -> &'static str {
        match self {
            Precision::Int8 => "_quantized",
            Precision::Float32 => "",
        }
    }
}

/// Name fragments that mark a quantised export.
const INT8_HINTS: &[&str] = &["quantized", "int8", "uint8", "_q8", "qint8", "quint8"];

#[derive(Debug, thiserror::Error)]
pub enum ClipInstallError {
    #[error(
        "no CLIP source configured: CLIP weights are in no package registry, so ocular downloads them only from a \
         base URL you give with --clip-url or OCULAR_CLIP_URL (a folder in the transformers.js layout, holding \
         onnx/vision_model_quantized.onnx and onnx/text_model_quantized.onnx); without a network, download an \
         export elsewhere and run `ocular models import-clip DIR`"
    )]
    NoSource,
    #[error("`curl` was not found; it downloads the CLIP export (or use `ocular models import-clip DIR`)")]
    CurlMissing(#[source] std::io::Error),
    #[error("downloading {url} failed (does this machine reach it?): {stderr}")]
    Download { url: String, stderr: String },
    #[error(
        "no CLIP image or text tower found in {0:?} (looked for ONNX graphs with a float image input or int64 token ids)"
    )]
    NotFound(Vec<PathBuf>),
    #[error("{path} is not a readable ONNX model")]
    Header {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an ONNX file's header says.
#[derive(Debug, Clone, Default)]
pub struct GraphHeader {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub metadata: Vec<(String, String)>,
}

impl GraphHeader {
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A tower found on disk.
#[derive(Debug, Clone)]
pub struct Tower {
    pub path: PathBuf,
    pub header: GraphHeader,
    pub precision: Precision,
}

/// The towers found; either may be missing (image-only search needs only the image tower).
#[derive(Debug, Clone, Default)]
pub struct ClipExport {
    pub image: Option<Tower>,
    pub text: Option<Tower>,
}

/// Finds the towers among `paths` (ONNX files, or folders searched with their `onnx/`).
pub fn find_export(paths: &[PathBuf], prefer: Precision) -> Result<ClipExport, ClipInstallError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for dir in [p.clone(), p.join("onnx")] {
                let Ok(rd) = std::fs::read_dir(&dir) else { continue };
                let mut found: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                found.retain(|f| f.extension().is_some_and(|e| e == "onnx"));
                found.sort();
                files.extend(found);
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut export = ClipExport::default();
    for path in files {
        let header = read_header(&path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let precision = if INT8_HINTS.iter().any(|h| name.contains(h)) { Precision::Int8 } else { Precision::Float32 };
        // Half-precision and 4-bit variants take inputs ocular does not feed; skip them.
        if ["fp16", "q4", "bnb4", "float16"].iter().any(|h| name.contains(h)) {
            continue;
        }
        let slot = match tower_kind(&header) {
            Some(TowerKind::Image) => &mut export.image,
            Some(TowerKind::Text) => &mut export.text,
            None => continue,
        };
        let better = slot.as_ref().is_none_or(|t| t.precision != prefer && precision == prefer);
        if better {
            *slot = Some(Tower { path, header, precision });
        }
    }
    if export.image.is_none() && export.text.is_none() {
        return Err(ClipInstallError::NotFound(paths.to_vec()));
    }
    Ok(export)
}

enum TowerKind {
    Image,
    Text,
}

fn tower_kind(h: &GraphHeader) -> Option<TowerKind> {
    let image = h.inputs.iter().any(|i| i.dtype == "float32" && i.shape.len() == 4);
    let text = h.inputs.iter().any(|i| i.dtype == "int64" && i.shape.len() == 2);
    match (image, text) {
        (true, false) => Some(TowerKind::Image),
        (false, true) => Some(TowerKind::Text),
        // A joint CLIPModel graph (both inputs) cannot be loaded one tower at a time.
        _ => None,
    }
}

/// Downloads the transformers.js layout from `base_url` into `dest` (curl, so the machine's
/// proxy and certificate settings apply; `file://` works for mirrors on disk).
pub fn download(base_url: &str, prefer: Precision, dest: &Path) -> Result<ClipExport, ClipInstallError> {
    let base = base_url.trim_end_matches('/');
    let mut paths = Vec::new();
    for tower in ["vision_model", "text_model"] {
        let file = format!("{tower}{}.onnx", prefer.suffix());
        let url = format!("{base}/onnx/{file}");
        let target = dest.join("onnx").join(&file);
        if !target.is_file() {
            curl(&url, &target)?;
        }
        paths.push(target);
    }
    find_export(&paths, prefer)
}

fn curl(url: &str, target: &Path) -> Result<(), ClipInstallError> {
    let io = |source| ClipInstallError::Io { path: target.to_path_buf(), source };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let partial = target.with_extension("partial");
    let out = Command::new("curl")
        .args(["--fail", "--location", "--silent", "--show-error", "--connect-timeout", "20", "--retry", "2"])
        .arg("--output")
        .arg(&partial)
        .arg(url)
        .output()
        .map_err(ClipInstallError::CurlMissing)?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        // curl repeats its message per retry; the last line says it.
        let stderr =
            String::from_utf8_lossy(&out.stderr).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        return Err(ClipInstallError::Download { url: url.to_string(), stderr });
    }
    std::fs::rename(&partial, target).map_err(io)
}

/// Reads inputs, outputs and metadata of an ONNX model, seeking past everything else.
pub fn read_header(path: &Path) -> Result<GraphHeader, ClipInstallError> {
    let err = |source| ClipInstallError::Header { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    let mut r = Walker { inner: BufReader::new(file), pos: 0 };
    let mut header = GraphHeader::default();
    let mut raw_inputs = Vec::new();
    let mut initializers = Vec::new();
    while r.pos < len {
        match r.field().map_err(err)? {
            // ModelProto.graph: walk its fields too.
            (7, 2) => {
                let end = r.pos + r.varint().map_err(err)?;
                while r.pos < end {
                    match r.field().map_err(err)? {
                        (5, 2) => initializers.push(r.initializer_name().map_err(err)?),
                        (11, 2) => raw_inputs.push(r.message::<ValueInfoProto>().map_err(err)?),
                        (12, 2) => header.outputs.push(spec(&r.message::<ValueInfoProto>().map_err(err)?)),
                        (_, wire) => r.skip(wire).map_err(err)?,
                    }
                }
            }
            (14, 2) => {
                let m = r.message::<StringStringEntryProto>().map_err(err)?;
                header.metadata.push((m.key, m.value));
            }
            (_, wire) => r.skip(wire).map_err(err)?,
        }
    }
    // Old exporters also list weights as graph inputs; those are not fed.
    header.inputs = raw_inputs.iter().filter(|i| !initializers.contains(&i.name)).map(spec).collect();
    Ok(header)
}

fn spec(v: &ValueInfoProto) -> TensorSpec {
    let tensor = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let dtype = match tensor.map(|t| t.elem_type) {
        Some(data_type::FLOAT) => "float32",
        Some(data_type::INT64) => "int64",
        Some(data_type::INT32) => "int32",
        Some(10) => "float16",
        _ => "other",
    };
    let shape = tensor.and_then(|t| t.shape.as_ref()).map_or_else(Vec::new, |s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(crate::onnx::proto::DimensionValue::DimValue(n)) => n,
                _ => -1,
            })
            .collect()
    });
    TensorSpec { name: v.name.clone(), dtype: dtype.into(), shape }
}

/// A protobuf reader that knows its offset and skips by seeking.
struct Walker {
    inner: BufReader<File>,
    pos: u64,
}

impl Walker {
    fn varint(&mut self) -> std::io::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8];
            self.inner.read_exact(&mut byte)?;
            self.pos += 1;
            value |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "varint too long"))
    }

    /// The next field's number and wire type.
    fn field(&mut self) -> std::io::Result<(u64, u64)> {
        let tag = self.varint()?;
        Ok((tag >> 3, tag & 7))
    }

    fn skip(&mut self, wire: u64) -> std::io::Result<()> {
        let n = match wire {
            0 => return self.varint().map(|_| ()),
            1 => 8,
            2 => self.varint()?,
            5 => 4,
            _ => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("wire type {wire}"))),
        };
        self.inner.seek_relative(n as i64)?;
        self.pos += n;
        Ok(())
    }

    fn bytes(&mut self) -> std::io::Result<Vec<u8>> {
        let n = self.varint()?;
        // Headers are small; a huge length here means this is not an ONNX file.
        if n > 64 << 20 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "field too large for a header"));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf)?;
        self.pos += n;
        Ok(buf)
    }

    fn message<M: Message + Default>(&mut self) -> std::io::Result<M> {
        let buf = self.bytes()?;
        M::decode(buf.as_slice()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// `TensorProto.name` (field 8) of an initializer, seeking past its data.
    fn initializer_name(&mut self) -> std::io::Result<String> {
        let end = self.pos + self.varint()?;
        let mut name = String::new();
        while self.pos < end {
            match self.field()? {
                (8, 2) => name = String::from_utf8_lossy(&self.bytes()?).into_owned(),
                (_, wire) => self.skip(wire)?,
            }
        }
        Ok(name)
    }
}
