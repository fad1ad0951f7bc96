//! Reading GGUF metadata in Rust (never the tensor data): the key/value header and the tensor
//! table. Every count and length is checked against the file's size before anything is allocated,
//! so a corrupt or hostile header (absurd tensor counts, 2^60-byte strings) is a clean error.

use super::memo::{file_identity, Memo};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;
use std::sync::LazyLock;

const MAGIC: &[u8; 4] = b"GGUF";
/// Limits that no real model comes near; past them the header is corrupt.
const MAX_ENTRIES: u64 = 1 << 20;
const MAX_STRING: u64 = 64 << 20;
/// Arrays longer than this are skipped unless the caller wants them (vocabularies).
const SMALL_ARRAY: u64 = 5;
/// The most values (array elements included) a header may hold once read. A value costs about 80
/// bytes in memory however few it takes in the file (a u8 is one byte), so without a bound a
/// file of byte arrays costs 80 times its size. Without long arrays a real header has a few
/// hundred values; with them (`/api/show` verbose) a large vocabulary about 1.5 million (256k
/// tokens, their scores and types, 500k merges).
const MAX_VALUES: u64 = 1 << 16;
const MAX_VALUES_WITH_ARRAYS: u64 = 1 << 22;
/// How deep arrays of arrays may nest. Real files nest at most one level (llama.cpp's own reader
/// refuses arrays of arrays); the reader recurses per level, so without a bound a few megabytes
/// of nested array headers overflow the stack and take the daemon with them.
const MAX_NESTING: u32 = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub offset: u64,
}

impl TensorInfo {
    /// The number of elements; the reader refuses tensors whose count overflows a u64.
    pub fn elements(&self) -> u64 {
        self.dims.iter().fold(1, |a, d| a.saturating_mul(*d))
    }
}

#[derive(Debug, Clone)]
pub struct Gguf {
    pub version: u32,
    /// Every key/value; arrays longer than 5 elements are `[]` unless read with `keep_arrays`.
    pub kv: Map<String, Value>,
    pub tensors: Vec<TensorInfo>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GgufError(pub String);

impl Gguf {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.kv.get(key).and_then(Value::as_str)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.kv.get(key).and_then(Value::as_u64)
    }

    pub fn architecture(&self) -> String {
        self.str("general.architecture")
            .unwrap_or("unknown")
            .to_owned()
    }

    /// `<arch>.<suffix>`, e.g. `llama.context_length`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        self.u64(&format!("{}.{suffix}", self.architecture()))
    }

    /// `general.parameter_count`, else the sum of the tensors' elements. Each tensor's count fits
    /// in a u64 (the reader checks), but a million of them may not: the sum saturates.
    pub fn parameter_count(&self) -> u64 {
        self.u64("general.parameter_count").unwrap_or_else(|| {
            self.tensors
                .iter()
                .map(TensorInfo::elements)
                .fold(0, u64::saturating_add)
        })
    }

    /// `general.file_type` as Ollama names quantization levels (`Q4_K_M`, `F16`, ...).
    pub fn quantization_level(&self) -> String {
        self.u64("general.file_type")
            .map(file_type_name)
            .unwrap_or_else(|| "unknown".into())
    }

    /// The `file_type` Ollama's create writes in a model's config blob: as
    /// [`Gguf::quantization_level`], but `unknown` for file type 0 (all F32), which Ollama's
    /// `KV.FileType` does not tell from an absent one. The config blob's bytes, and so the
    /// model's ID, match Ollama's only with the same text.
    pub fn ollama_file_type(&self) -> String {
        match self.u64("general.file_type") {
            Some(t) if t > 0 => file_type_name(t),
            _ => "unknown".into(),
        }
    }
}

/// Headers read without their long arrays, by file identity (see `memo`).
static HEADERS: LazyLock<Memo<Gguf>> = LazyLock::new(Memo::default);

/// Reads the header of a GGUF file. `keep_arrays` keeps long arrays (the vocabulary) in `kv`;
/// without them the header is remembered until the file changes.
pub fn read(path: &Path, keep_arrays: bool) -> Result<Gguf, GgufError> {
    if keep_arrays {
        return read_file(path, true);
    }
    let id = file_identity(path).map_err(|e| GgufError(e.to_string()))?;
    HEADERS.get_or_try(path, id, || read_file(path, false))
}

fn read_file(path: &Path, keep_arrays: bool) -> Result<Gguf, GgufError> {
    let file = File::open(path).map_err(|e| GgufError(e.to_string()))?;
    let size = file.metadata().map_err(|e| GgufError(e.to_string()))?.len();
    read_from(BufReader::new(file), size, keep_arrays)
}

/// Reads the header of a GGUF file held in memory, as [`read`] reads one on disk (the fuzz
/// targets use it; nothing is cached).
pub fn parse(bytes: &[u8], keep_arrays: bool) -> Result<Gguf, GgufError> {
    read_from(Cursor::new(bytes), bytes.len() as u64, keep_arrays)
}

/// The header of `size` bytes of GGUF read from `inner`.
fn read_from(inner: impl Read + Seek, size: u64, keep_arrays: bool) -> Result<Gguf, GgufError> {
    let mut r = Reader {
        inner,
        pos: 0,
        size,
        values_left: if keep_arrays {
            MAX_VALUES_WITH_ARRAYS
        } else {
            MAX_VALUES
        },
    };
    let mut magic = [0u8; 4];
    r.bytes(&mut magic)?;
    if &magic != MAGIC {
        return Err(GgufError("not a GGUF file (bad magic)".into()));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError(format!("unsupported GGUF version {version}")));
    }
    let n_tensors = r.count("tensor count", 8)?;
    let n_kv = r.count("metadata count", 12)?;
    let mut kv = Map::new();
    for _ in 0..n_kv {
        let key = r.string()?;
        let ty = r.u32()?;
        let v = r.value(ty, keep_arrays, 0)?;
        kv.insert(key, v);
    }
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims > 8 {
            return Err(GgufError(format!(
                "tensor {name:?} has {n_dims} dimensions"
            )));
        }
        let dims = (0..n_dims)
            .map(|_| r.u64())
            .collect::<Result<Vec<_>, _>>()?;
        // Whatever its type, no tensor has more elements than a u64 counts.
        if dims
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d))
            .is_none()
        {
            return Err(GgufError(format!(
                "corrupt header: tensor {name:?} has an impossible shape {dims:?}"
            )));
        }
        let ggml_type = r.u32()?;
        let offset = r.u64()?;
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    // The data section starts at the next multiple of the alignment; every tensor must fit.
    let align = kv
        .get("general.alignment")
        .and_then(Value::as_u64)
        .filter(|a| *a > 0)
        .unwrap_or(32);
    let data_start = r.pos.div_ceil(align) * align;
    for t in &tensors {
        // Tensors of types we do not know the size of are not checked.
        if let Some((bytes, per)) = block_size(t.ggml_type) {
            let end = t
                .elements()
                .div_ceil(per)
                .checked_mul(bytes)
                .and_then(|b| data_start.checked_add(t.offset)?.checked_add(b));
            if end.is_none_or(|e| e > size) {
                return Err(GgufError(format!(
                    "truncated: tensor {:?} ends past the end of the file ({size} bytes)",
                    t.name
                )));
            }
        }
    }
    Ok(Gguf {
        version,
        kv,
        tensors,
    })
}

struct Reader<R> {
    inner: R,
    pos: u64,
    size: u64,
    /// How many more values may be read ([`MAX_VALUES`]).
    values_left: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn bytes(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.inner
            .read_exact(buf)
            .map_err(|_| GgufError("truncated: the header is cut short".into()))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        if n > self.size.saturating_sub(self.pos) {
            return Err(GgufError("truncated: the header is cut short".into()));
        }
        // Within the buffer this moves a cursor (`BufReader` overrides `seek_relative`): a
        // vocabulary of 150k strings is 150k short skips, and a plain `seek` would drop the
        // buffer and make a syscall for each one.
        self.inner
            .seek_relative(n as i64)
            .map_err(|e| GgufError(e.to_string()))?;
        self.pos += n;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A count whose entries take at least `min_entry` bytes each: it must fit in the file.
    fn count(&mut self, what: &str, min_entry: u64) -> Result<u64, GgufError> {
        let n = self.u64()?;
        let room = self.size.saturating_sub(self.pos);
        if n > MAX_ENTRIES || n.saturating_mul(min_entry) > room {
            return Err(GgufError(format!(
                "corrupt header: {what} {n} is impossible for a {} byte file",
                self.size
            )));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let n = self.u64()?;
        if n > MAX_STRING {
            return Err(GgufError(format!("corrupt header: a string of {n} bytes")));
        }
        if n > self.size.saturating_sub(self.pos) {
            return Err(GgufError("truncated: the header is cut short".into()));
        }
        let mut buf = vec![0u8; n as usize];
        self.bytes(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// One value of type `ty`; `depth` is how many arrays enclose it.
    fn value(&mut self, ty: u32, keep_arrays: bool, depth: u32) -> Result<Value, GgufError> {
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or_else(|| GgufError("corrupt header: more values than any model has".into()))?;
        Ok(match ty {
            0 => self.small(1, |b| Value::from(b[0]))?,
            1 => self.small(1, |b| Value::from(b[0] as i8))?,
            2 => self.small(2, |b| Value::from(u16::from_le_bytes([b[0], b[1]])))?,
            3 => self.small(2, |b| Value::from(i16::from_le_bytes([b[0], b[1]])))?,
            4 => Value::from(self.u32()?),
            5 => Value::from(self.u32()? as i32),
            6 => Value::from(f32::from_le_bytes(self.u32()?.to_le_bytes()) as f64),
            7 => self.small(1, |b| Value::Bool(b[0] != 0))?,
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err(GgufError(format!(
                        "corrupt header: arrays nested more than {MAX_NESTING} deep"
                    )));
                }
                let elem = self.u32()?;
                let n = self.u64()?;
                // The least an element takes: its fixed size, a string's length, or a nested
                // array's type and count.
                let min = elem_size(elem).unwrap_or(if elem == 9 { 12 } else { 8 });
                if n.saturating_mul(min) > self.size.saturating_sub(self.pos) {
                    return Err(GgufError(format!(
                        "corrupt header: an array of {n} elements"
                    )));
                }
                if n > SMALL_ARRAY && !keep_arrays {
                    self.skip_array(elem, n, depth + 1)?;
                    Value::Array(Vec::new())
                } else {
                    Value::Array(
                        (0..n)
                            .map(|_| self.value(elem, keep_arrays, depth + 1))
                            .collect::<Result<_, _>>()?,
                    )
                }
            }
            10 => Value::from(self.u64()?),
            11 => Value::from(self.u64()? as i64),
            12 => Value::from(f64::from_le_bytes(self.u64()?.to_le_bytes())),
            other => {
                return Err(GgufError(format!(
                    "corrupt header: unknown value type {other}"
                )))
            }
        })
    }

    fn small(&mut self, n: usize, f: impl Fn(&[u8]) -> Value) -> Result<Value, GgufError> {
        let mut b = [0u8; 2];
        self.bytes(&mut b[..n])?;
        Ok(f(&b[..n]))
    }

    /// Skips `n` elements of type `elem`, which sit `depth` arrays deep.
    fn skip_array(&mut self, elem: u32, n: u64, depth: u32) -> Result<(), GgufError> {
        match elem_size(elem) {
            Some(sz) => self.skip(n * sz),
            None if elem == 8 => {
                for _ in 0..n {
                    let len = self.u64()?;
                    if len > MAX_STRING {
                        return Err(GgufError(format!(
                            "corrupt header: a string of {len} bytes"
                        )));
                    }
                    self.skip(len)?;
                }
                Ok(())
            }
            None => {
                for _ in 0..n {
                    self.value(elem, false, depth)?;
                }
                Ok(())
            }
        }
    }
}

/// Bytes of one fixed-size value type.
fn elem_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// ggml's (block bytes, block elements) of a tensor type.
fn block_size(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (4, 1),
        1 | 30 => (2, 1),
        2 => (18, 32),
        3 => (20, 32),
        6 => (22, 32),
        7 => (24, 32),
        8 => (34, 32),
        9 => (36, 32),
        10 => (84, 256),
        11 => (110, 256),
        12 => (144, 256),
        13 => (176, 256),
        14 => (210, 256),
        15 => (292, 256),
        20 => (18, 32),
        23 => (136, 256),
        24 => (1, 1),
        25 => (2, 1),
        26 => (4, 1),
        27 | 28 => (8, 1),
        39 => (17, 32),
        _ => return None,
    })
}

/// ggml's tensor type names (`/api/show` `tensors[].type`).
pub fn ggml_type_name(t: u32) -> String {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    match t {
        34 => "TQ1_0".into(),
        35 => "TQ2_0".into(),
        39 => "MXFP4".into(),
        t => NAMES
            .get(t as usize)
            .map_or_else(|| format!("type {t}"), |n| (*n).to_owned()),
    }
}

/// llama.cpp's `llama_ftype` names, as Ollama shows them.
pub fn file_type_name(ft: u64) -> String {
    let name = match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4",
        _ => return format!("unknown ({ft})"),
    };
    name.to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal GGUF writer for tests: string/u32 KVs and F32 tensors.
    pub fn write_gguf(path: &Path, kvs: &[(&str, Value)], tensors: &[(&str, Vec<u64>)]) {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
        let s = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        for (k, v) in kvs {
            s(&mut b, k);
            match v {
                Value::String(t) => {
                    b.extend_from_slice(&8u32.to_le_bytes());
                    s(&mut b, t);
                }
                Value::Number(n) => {
                    b.extend_from_slice(&4u32.to_le_bytes());
                    b.extend_from_slice(&(n.as_u64().unwrap() as u32).to_le_bytes());
                }
                Value::Array(items) => {
                    b.extend_from_slice(&9u32.to_le_bytes());
                    b.extend_from_slice(&8u32.to_le_bytes());
                    b.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for i in items {
                        s(&mut b, i.as_str().unwrap());
                    }
                }
                _ => unreachable!(),
            }
        }
        let mut off = 0u64;
        for (name, dims) in tensors {
            s(&mut b, name);
            b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&off.to_le_bytes());
            off += dims.iter().product::<u64>() * 4;
        }
        b.resize(b.len().div_ceil(32) * 32 + off as usize, 0);
        std::fs::write(path, b).unwrap();
    }

    fn sample(path: &Path) {
        write_gguf(
            path,
            &[
                ("general.architecture", Value::from("llama")),
                ("general.file_type", Value::from(15)),
                ("llama.context_length", Value::from(2048)),
                (
                    "tokenizer.ggml.tokens",
                    Value::from(vec!["a", "b", "c", "d", "e", "f"]),
                ),
                ("tokenizer.chat_template", Value::from("{{ messages }}")),
            ],
            &[
                ("token_embd.weight", vec![4, 8]),
                ("output_norm.weight", vec![4]),
            ],
        );
    }

    #[test]
    fn headers_are_remembered_until_the_file_changes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        sample(&p);
        assert_eq!(read(&p, false).unwrap().architecture(), "llama");
        // Same length and modification time: the remembered header, not the file, answers.
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.windows(5).position(|w| w == b"llama").unwrap();
        bytes[at..at + 5].copy_from_slice(b"qwen2");
        std::fs::write(&p, &bytes).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        assert_eq!(read(&p, false).unwrap().architecture(), "llama");
        // A newer modification time: read again.
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(mtime + std::time::Duration::from_secs(1))
            .unwrap();
        drop(f);
        assert_eq!(read(&p, false).unwrap().architecture(), "qwen2");
        // With arrays kept the file is always read.
        assert_eq!(read(&p, true).unwrap().architecture(), "qwen2");
    }

    #[test]
    fn reads_metadata_and_tensors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        sample(&p);
        let g = read(&p, false).unwrap();
        assert_eq!(g.architecture(), "llama");
        assert_eq!(g.quantization_level(), "Q4_K_M");
        assert_eq!(g.arch_u64("context_length"), Some(2048));
        assert_eq!(g.parameter_count(), 36);
        assert_eq!(
            g.kv["tokenizer.ggml.tokens"],
            Value::Array(vec![]),
            "long arrays skipped"
        );
        assert_eq!(g.str("tokenizer.chat_template"), Some("{{ messages }}"));
        let full = read(&p, true).unwrap();
        assert_eq!(
            full.kv["tokenizer.ggml.tokens"].as_array().unwrap().len(),
            6
        );
    }

    #[test]
    fn corrupt_headers_are_clean_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        sample(&p);
        let good = std::fs::read(&p).unwrap();

        let mut bad = good.clone();
        bad[0] = b'X';
        std::fs::write(&p, &bad).unwrap();
        assert!(read(&p, false).unwrap_err().0.contains("magic"));

        std::fs::write(&p, &good[..good.len() / 2]).unwrap();
        assert!(read(&p, false).unwrap_err().0.contains("truncated"));

        let mut bad = good.clone();
        bad[8..16].copy_from_slice(&(1u64 << 62).to_le_bytes()); // tensor count
        std::fs::write(&p, &bad).unwrap();
        assert!(read(&p, false).unwrap_err().0.contains("tensor count"));

        let mut bad = good.clone();
        bad[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes()); // first key's length
        std::fs::write(&p, &bad).unwrap();
        assert!(read(&p, false).unwrap_err().0.contains("string"));

        // Every prefix of a valid file fails cleanly, never panics.
        for cut in (0..good.len()).step_by(7) {
            std::fs::write(&p, &good[..cut]).unwrap();
            assert!(read(&p, false).is_err(), "cut at {cut}");
        }
    }

    /// A header with one key whose value is `levels` arrays, each holding the next, around an
    /// empty u32 array.
    pub fn nested_arrays(levels: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(40 + levels * 12);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes()); // tensors
        b.extend_from_slice(&1u64.to_le_bytes()); // key/values
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(b"key");
        b.extend_from_slice(&9u32.to_le_bytes()); // an array...
        for _ in 1..levels {
            b.extend_from_slice(&9u32.to_le_bytes()); // ...of arrays
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        b.extend_from_slice(&4u32.to_le_bytes()); // ...of no u32s
        b.extend_from_slice(&0u64.to_le_bytes());
        b
    }

    #[test]
    fn deeply_nested_arrays_are_an_error_not_a_stack_overflow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        // 500,000 levels in 6 MB: the reader once recursed through all of them and overflowed
        // the stack, killing the daemon.
        std::fs::write(&p, nested_arrays(500_000)).unwrap();
        for keep_arrays in [false, true] {
            let e = read(&p, keep_arrays).unwrap_err();
            assert!(e.0.contains("nested"), "{e}");
        }
        // Two levels, as a real file might have, still read.
        std::fs::write(&p, nested_arrays(2)).unwrap();
        let g = read(&p, true).unwrap();
        assert_eq!(g.kv["key"], serde_json::json!([[]]));
    }

    /// A header of `tensors` tensors of an unknown ggml type (so their data is not checked), one
    /// with `dims` and the rest with `[1 << 62, 2]`.
    fn with_tensor(dims: &[u64], tensors: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&tensors.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes()); // key/values
        for i in 0..tensors {
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(b'a' + i as u8);
            let dims: &[u64] = if i == 0 { dims } else { &[1 << 62, 2] };
            b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&99u32.to_le_bytes()); // no such ggml type
            b.extend_from_slice(&0u64.to_le_bytes()); // offset
        }
        b
    }

    #[test]
    fn tensor_shapes_that_overflow_are_errors_and_counts_saturate() {
        // Found by fuzzing: 2^32 x 2^32 x 2 elements overflowed u64 in `parameter_count`, a
        // panic in debug builds and a wrapped, wrong count in release.
        let e = parse(&with_tensor(&[1 << 32, 1 << 32, 2], 1), false).unwrap_err();
        assert!(e.0.contains("impossible shape"), "{e}");
        // Each count fits, their sum does not.
        let g = parse(&with_tensor(&[1 << 62, 2], 3), false).unwrap();
        assert_eq!(g.parameter_count(), u64::MAX);
        // A known type whose byte size overflows ends past the end of the file.
        let mut b = with_tensor(&[u64::MAX], 1);
        let at = b.len() - 12;
        b[at..at + 4].copy_from_slice(&10u32.to_le_bytes()); // Q2_K
        assert!(parse(&b, false).unwrap_err().0.contains("truncated"));
    }

    /// A header with `keys` keys, each an array of `n` u8s.
    fn byte_arrays(keys: u64, n: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes()); // tensors
        b.extend_from_slice(&keys.to_le_bytes());
        for i in 0..keys {
            let key = format!("k{i}");
            b.extend_from_slice(&(key.len() as u64).to_le_bytes());
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(&9u32.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes()); // of u8
            b.extend_from_slice(&n.to_le_bytes());
            b.resize(b.len() + n as usize, 7);
        }
        b
    }

    #[test]
    fn values_are_bounded_so_a_file_cannot_cost_80_times_its_size() {
        // Seen fuzzing: 8 MB of one-byte array elements read with `keep_arrays` took 600 MB.
        let huge = byte_arrays(1, MAX_VALUES_WITH_ARRAYS);
        let e = parse(&huge, true).unwrap_err();
        assert!(e.0.contains("more values"), "{e}");
        // Skipped, the same array costs nothing.
        assert_eq!(parse(&huge, false).unwrap().kv["k0"], serde_json::json!([]));
        // Small arrays are always read: many of them count too.
        let many = byte_arrays(MAX_VALUES / 5, 5);
        assert!(parse(&many, false).unwrap_err().0.contains("more values"));
        // A vocabulary-sized header still reads whole.
        let vocab = byte_arrays(4, 300_000);
        let g = parse(&vocab, true).unwrap();
        assert_eq!(g.kv["k3"].as_array().unwrap().len(), 300_000);
    }

    #[test]
    fn array_lengths_are_bounded_by_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        // An array claiming 2^40 nested arrays (or strings) in a file of a few bytes.
        for elem in [9u32, 8] {
            let mut b = nested_arrays(1);
            let n = b.len();
            b[n - 12..n - 8].copy_from_slice(&elem.to_le_bytes());
            b[n - 8..].copy_from_slice(&(1u64 << 40).to_le_bytes());
            std::fs::write(&p, &b).unwrap();
            let e = read(&p, true).unwrap_err();
            assert!(e.0.contains("array of"), "{e}");
        }
    }
}
