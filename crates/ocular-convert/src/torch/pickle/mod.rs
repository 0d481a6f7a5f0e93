//! A minimal, safe reader for the Python pickles inside torch checkpoint files.
//!
//! `torch.save` writes its state dict as a protocol-2 pickle: `collections.OrderedDict` filled
//! with `torch._utils._rebuild_tensor_v2(...)` calls whose first argument is a *persistent id*
//! naming a storage (see `torch/serialization.py` in PyTorch, `_legacy_save` and `_save`).
//! A real unpickler would import and call whatever the file names, which is how a malicious
//! checkpoint runs code. This one is a data parser instead: it implements only the opcodes
//! torch emits, recognises exactly three callables by name and evaluates them itself
//! (`OrderedDict()` becomes a dict, `_rebuild_tensor_v2` a [`TensorRef`], a storage class a
//! [`StorageType`]), and refuses every other opcode or global with an error. Nothing is ever
//! imported or executed.
//!
//! Opcode semantics follow CPython's `Lib/pickle.py` (`_Unpickler.load_*`).

mod machine;

use std::cell::RefCell;
use std::rc::Rc;

/// Element type of a torch storage, from its class name (`torch.FloatStorage`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    Float,
    Double,
    Long,
    Int,
}

impl StorageType {
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::Float,
            "DoubleStorage" => Self::Double,
            "LongStorage" => Self::Long,
            "IntStorage" => Self::Int,
            _ => return None,
        })
    }

    /// Bytes per element on disk.
    pub fn element_size(self) -> usize {
        match self {
            Self::Float | Self::Int => 4,
            Self::Double | Self::Long => 8,
        }
    }
}

/// A storage named by a persistent id: its key in the file, element type and length.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: StorageType,
    /// Element count declared in the persistent id.
    pub numel: u64,
}

/// The arguments of one `_rebuild_tensor_v2` call: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// The callables a torch pickle may name; anything else is refused at the `GLOBAL` opcode.
#[derive(Debug, Clone, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    Storage(StorageType),
}

/// A Python value as far as torch state dicts need. Containers are shared (`Rc`) because the
/// pickle memo refers to the same object that later opcodes keep filling, exactly as in Python.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for `i64` (`LONG1`), as little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    /// A `dict` or `OrderedDict`, in insertion order.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Tensor(Rc<TensorRef>),
    Storage(Rc<StorageRef>),
    Global(GlobalRef),
}

/// An opaque allow-listed callable (kept public only so [`Value`] can be matched on).
#[derive(Debug, Clone)]
pub struct GlobalRef(Global);

#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("pickle ends early at byte {offset}")]
    UnexpectedEof { offset: usize },
    #[error("pickle opcode 0x{opcode:02x} at byte {offset} is not allowed in a torch checkpoint")]
    UnsupportedOpcode { opcode: u8, offset: usize },
    #[error("pickle names `{module}.{name}` at byte {offset}; only torch tensor rebuilding is allowed")]
    ForbiddenGlobal { module: String, name: String, offset: usize },
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("malformed pickle at byte {offset}: invalid UTF-8 string")]
    Utf8 {
        offset: usize,
        #[source]
        source: std::string::FromUtf8Error,
    },
}

/// Reads one pickle starting at `data[start..]`; returns the value and the offset just past
/// its `STOP` opcode (the legacy format stores several pickles back to back).
pub fn load(data: &[u8], start: usize) -> Result<(Value, usize), PickleError> {
    machine::run(data, start)
}
#[cfg(test)]
mod tests {
    use super::machine::long1;
    use super::*;

    #[test]
    fn reads_containers_and_shared_memo() {
        // pickle.dumps({'a': [1, 300, 70000], 'b': ('x', None, True)}, protocol=2) with the
        // list memoised and fetched again: {'a': L, 'b': L}.
        let data =
            b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01M,\x01Jp\x11\x01\x00eX\x01\x00\x00\x00bq\x03h\x02u.";
        let (v, end) = load(data, 0).unwrap();
        assert_eq!(end, data.len());
        let Value::Dict(d) = v else { panic!("not a dict") };
        let d = d.borrow();
        assert_eq!(d.len(), 2);
        let (Value::List(a), Value::List(b)) = (&d[0].1, &d[1].1) else { panic!("not lists") };
        assert!(Rc::ptr_eq(a, b), "memo must share the object");
        let ints: Vec<i64> = a.borrow().iter().map(|v| if let Value::Int(i) = v { *i } else { -1 }).collect();
        assert_eq!(ints, [1, 300, 70000]);
    }

    #[test]
    fn refuses_arbitrary_globals() {
        // The classic exploit: cos.system('echo') via GLOBAL + REDUCE.
        let data = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.";
        let err = load(data, 0).unwrap_err();
        assert!(matches!(err, PickleError::ForbiddenGlobal { ref module, .. } if module == "os"), "{err}");
    }

    #[test]
    fn refuses_unknown_opcodes_and_truncation() {
        // INST ('i') would instantiate a class: not part of torch's vocabulary.
        let err = load(b"\x80\x02i__builtin__\nobject\n.", 0).unwrap_err();
        assert!(matches!(err, PickleError::UnsupportedOpcode { opcode: b'i', offset: 2 }), "{err}");
        let err = load(b"\x80\x02X\xff\x00\x00\x00ab", 0).unwrap_err();
        assert!(matches!(err, PickleError::UnexpectedEof { .. }), "{err}");
    }

    #[test]
    fn long1_sign_extends() {
        assert!(matches!(long1(vec![0xff]), Value::Int(-1)));
        assert!(matches!(long1(vec![0x00, 0x01]), Value::Int(256)));
        assert!(matches!(long1(vec![0; 10]), Value::BigInt(_)));
    }
}
