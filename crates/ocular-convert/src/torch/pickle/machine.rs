//! The pickle virtual machine: one `match` arm per allowed opcode, following CPython's
//! `Lib/pickle.py` (`_Unpickler.load_*`). Torch-specific meaning (which globals exist, what a
//! persistent id is) is resolved here too, so that no opcode can produce anything but data.

use std::collections::HashMap;
use std::rc::Rc;

use super::{Global, GlobalRef, PickleError, StorageRef, StorageType, TensorRef, Value};

/// Runs one pickle from `data[start..]`; returns its value and the offset after `STOP`.
pub(super) fn run(data: &[u8], start: usize) -> Result<(Value, usize), PickleError> {
    let mut m = Machine { data, pos: start, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() };
    let value = m.run()?;
    Ok((value, m.pos))
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights saved by `MARK` (CPython's "metastack").
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn malformed(&self, reason: &'static str) -> PickleError {
        PickleError::Malformed { offset: self.pos, reason }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(PickleError::UnexpectedEof { offset: self.pos })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A `\n`-terminated ASCII line (the arguments of `GLOBAL`).
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let len = rest.iter().position(|&b| b == b'\n');
        let len = len.ok_or(PickleError::UnexpectedEof { offset: self.pos })?;
        let offset = self.pos;
        let bytes = self.take(len + 1)?[..len].to_vec();
        String::from_utf8(bytes).map_err(|source| PickleError::Utf8 { offset, source })
    }

    fn string(&mut self, len: usize) -> Result<Value, PickleError> {
        let offset = self.pos;
        let bytes = self.take(len)?.to_vec();
        let s = String::from_utf8(bytes).map_err(|source| PickleError::Utf8 { offset, source })?;
        Ok(Value::Str(s))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<&Value, PickleError> {
        self.stack.last().ok_or_else(|| self.malformed("stack underflow"))
    }

    /// Everything pushed since the last `MARK`, removing the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let height = self.marks.pop().ok_or_else(|| self.malformed("no MARK to pop"))?;
        if height > self.stack.len() {
            return Err(self.malformed("MARK above stack top"));
        }
        Ok(self.stack.split_off(height))
    }

    fn put(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn get(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self.memo.get(&key).cloned().ok_or_else(|| self.malformed("memo key not found"))?;
        self.stack.push(v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("odd number of dict items"));
        }
        let Value::Dict(dict) = self.top()? else {
            return Err(self.malformed("SETITEM on a non-dict"));
        };
        let mut dict = dict.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            // Python dicts overwrite on a repeated key; torch never writes one, so keep the
            // last value by appending and letting readers take the last match.
            dict.push((k, v));
        }
        Ok(())
    }

    fn global(&mut self, offset: usize) -> Result<Value, PickleError> {
        let module = self.line()?;
        let name = self.line()?;
        let g = match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch", class) => StorageType::from_class(class).map(Global::Storage),
            _ => None,
        };
        g.map(|g| Value::Global(GlobalRef(g))).ok_or(PickleError::ForbiddenGlobal { module, name, offset })
    }

    fn reduce(&mut self) -> Result<Value, PickleError> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let Value::Tuple(args) = args else {
            return Err(self.malformed("REDUCE arguments are not a tuple"));
        };
        match callable {
            Value::Global(GlobalRef(Global::OrderedDict)) if args.is_empty() => Ok(Value::Dict(Rc::default())),
            Value::Global(GlobalRef(Global::RebuildTensorV2)) => self.rebuild_tensor(&args),
            _ => Err(self.malformed("REDUCE of a callable other than OrderedDict or _rebuild_tensor_v2")),
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`; the last three only matter for autograd and are ignored.
    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value, PickleError> {
        let (Some(Value::Storage(storage)), Some(offset), Some(Value::Tuple(shape)), Some(Value::Tuple(strides))) =
            (args.first(), args.get(1), args.get(2), args.get(3))
        else {
            return Err(self.malformed("unexpected _rebuild_tensor_v2 arguments"));
        };
        let uint = |v: &Value| match v {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        };
        let ints = |t: &[Value]| t.iter().map(uint).collect::<Option<Vec<u64>>>();
        let bad = || self.malformed("negative or non-integer tensor geometry");
        let shape = ints(shape).ok_or_else(bad)?;
        let strides = ints(strides).ok_or_else(bad)?;
        if shape.len() != strides.len() {
            return Err(self.malformed("tensor shape and strides differ in rank"));
        }
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage: (**storage).clone(),
            offset: uint(offset).ok_or_else(bad)?,
            shape,
            strides,
        })))
    }

    /// torch's `persistent_load`: `('storage', StorageClass, key, location, numel[, view])`.
    fn persistent_load(&self, pid: Value) -> Result<Value, PickleError> {
        let Value::Tuple(t) = pid else {
            return Err(self.malformed("persistent id is not a tuple"));
        };
        match t.as_slice() {
            [
                Value::Str(tag),
                Value::Global(GlobalRef(Global::Storage(dtype))),
                Value::Str(key),
                Value::Str(_location),
                Value::Int(numel),
                rest @ ..,
            ] if tag == "storage" && *numel >= 0 => {
                // Legacy files may describe a view into another storage (PyTorch < 0.4);
                // those never appear in modern state dicts and are refused.
                if rest.iter().any(|v| !matches!(v, Value::None)) {
                    return Err(self.malformed("storage views are not supported"));
                }
                Ok(Value::Storage(Rc::new(StorageRef { key: key.clone(), dtype: *dtype, numel: *numel as u64 })))
            }
            _ => Err(self.malformed("unexpected persistent id")),
        }
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let offset = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO: torch writes 2; accept up to 5 as their opcodes are checked anyway.
                    if self.u8()? > 5 {
                        return Err(self.malformed("unknown pickle protocol"));
                    }
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b')' => self.stack.push(Value::Tuple(Rc::default())),
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b']' => self.stack.push(Value::List(Rc::default())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(self.malformed("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of the given length.
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?.to_vec();
                    self.stack.push(long1(bytes));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                b'q' => {
                    let k = self.u8()?;
                    self.put(k.into())?;
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.le()?);
                    self.put(k)?;
                }
                0x94 => {
                    // MEMOIZE (protocol 4): the next free memo index.
                    let k = u32::try_from(self.memo.len()).map_err(|_| self.malformed("memo overflow"))?;
                    self.put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.get(k.into())?;
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.le()?);
                    self.get(k)?;
                }
                b'c' => {
                    let g = self.global(offset)?;
                    self.stack.push(g);
                }
                b'R' => {
                    let v = self.reduce()?;
                    self.stack.push(v);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD on an OrderedDict sets its `_metadata` attribute (module versions);
                    // it carries no weights, so the state is dropped.
                    let _state = self.pop()?;
                    if !matches!(self.top()?, Value::Dict(_)) {
                        return Err(self.malformed("BUILD on something other than a dict"));
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'a' | b'e' => {
                    let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                    let Value::List(list) = self.top()? else {
                        return Err(self.malformed("APPEND on a non-list"));
                    };
                    list.borrow_mut().extend(items);
                }
                _ => return Err(PickleError::UnsupportedOpcode { opcode: op, offset }),
            }
        }
    }
}

pub(super) fn long1(bytes: Vec<u8>) -> Value {
    if bytes.is_empty() {
        return Value::Int(0);
    }
    if bytes.len() <= 8 {
        let negative = bytes[bytes.len() - 1] & 0x80 != 0;
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        buf[..bytes.len()].copy_from_slice(&bytes);
        return Value::Int(i64::from_le_bytes(buf));
    }
    Value::BigInt(bytes)
}
