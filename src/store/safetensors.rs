//! Reading safetensors headers (never the tensor data): an 8-byte little-endian header length, a
//! JSON header mapping tensor names to dtype, shape and byte offsets, then the raw data.

use serde_json::Value;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Refuse headers larger than this: a corrupt length must not make us allocate gigabytes.
const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub begin: u64,
    pub end: u64,
}

impl TensorInfo {
    /// The number of elements; the reader refuses shapes whose count overflows a u64.
    pub fn elements(&self) -> u64 {
        self.shape.iter().fold(1, |a, d| a.saturating_mul(*d))
    }
}

#[derive(Debug, Clone)]
pub struct Header {
    pub tensors: Vec<TensorInfo>,
    /// `__metadata__` (`{"format": "mlx"}` for files written by MLX).
    pub metadata: serde_json::Map<String, Value>,
    /// 8 + header length: where the data section starts.
    pub data_start: u64,
}

impl Header {
    /// The file size the header implies (`u64::MAX` when offsets claim more than that).
    pub fn expected_file_size(&self) -> u64 {
        let end = self.tensors.iter().map(|t| t.end).max().unwrap_or(0);
        self.data_start.saturating_add(end)
    }
}

/// Bytes per element of a safetensors dtype.
pub fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// Parses the header of a safetensors file. Errors say what is wrong, not which file: callers
/// add the path.
pub fn read_header(path: &Path) -> Result<Header, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    read_header_from(f, size)
}

/// Parses the header of a safetensors file held in memory (the fuzz targets use it).
pub fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    read_header_from(bytes, bytes.len() as u64)
}

/// The header of a file of `size` bytes, read from its start.
fn read_header_from(mut f: impl Read, size: u64) -> Result<Header, String> {
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| "file is shorter than a safetensors header".to_string())?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(format!("header length {n} is implausible"));
    }
    // Checked before allocating: a 16-byte file claiming a 100 MB header costs nothing.
    if n > size.saturating_sub(8) {
        return Err("header is cut short".to_string());
    }
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf)
        .map_err(|_| "header is cut short".to_string())?;
    let v: Value =
        serde_json::from_slice(&buf).map_err(|e| format!("header is not valid JSON: {e}"))?;
    let obj = v.as_object().ok_or("header is not a JSON object")?;
    let mut tensors = Vec::new();
    let mut metadata = serde_json::Map::new();
    for (name, t) in obj {
        if name == "__metadata__" {
            metadata = t.as_object().cloned().unwrap_or_default();
            continue;
        }
        let bad = || format!("tensor {name:?} has a malformed entry");
        let dtype = t
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned();
        let shape = t
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|d| d.as_u64().ok_or_else(bad))
            .collect::<Result<Vec<u64>, String>>()?;
        let offs = t
            .get("data_offsets")
            .and_then(Value::as_array)
            .ok_or_else(bad)?;
        let (begin, end) = match offs.as_slice() {
            [b, e] => (b.as_u64().ok_or_else(bad)?, e.as_u64().ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        if end < begin {
            return Err(bad());
        }
        let info = TensorInfo {
            name: name.clone(),
            dtype,
            shape,
            begin,
            end,
        };
        let Some(elements) = info.shape.iter().try_fold(1u64, |a, d| a.checked_mul(*d)) else {
            return Err(format!("tensor {name:?} has an impossible shape"));
        };
        if let Some(size) = dtype_size(&info.dtype) {
            let need = elements.checked_mul(size);
            if need != Some(end - begin) {
                let need = need.map_or("more than 2^64".to_owned(), |n| n.to_string());
                return Err(format!(
                    "tensor {name:?} takes {} bytes but its shape and dtype need {need}",
                    end - begin,
                ));
            }
        }
        tensors.push(info);
    }
    Ok(Header {
        tensors,
        metadata,
        data_start: 8 + n,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a minimal safetensors file with the given (name, dtype, shape) tensors.
    pub fn write_safetensors(path: &Path, tensors: &[(&str, &str, Vec<u64>)]) {
        let mut header = serde_json::Map::new();
        let mut off = 0u64;
        for (name, dtype, shape) in tensors {
            let n: u64 = shape.iter().product::<u64>() * dtype_size(dtype).unwrap();
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}),
            );
            off += n;
        }
        header.insert("__metadata__".into(), serde_json::json!({"format": "mlx"}));
        let h = serde_json::to_vec(&header).unwrap();
        let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&h);
        bytes.resize(bytes.len() + off as usize, 0);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_a_header() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("model.safetensors");
        write_safetensors(&p, &[("a", "F16", vec![2, 3]), ("b", "U32", vec![4])]);
        let h = read_header(&p).unwrap();
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.metadata.get("format").unwrap(), "mlx");
        assert_eq!(h.expected_file_size(), std::fs::metadata(&p).unwrap().len());
    }

    #[test]
    fn sizes_that_overflow_are_errors_not_panics() {
        // Found by fuzzing: these overflowed u64 (a panic in debug builds, a wrapped size that
        // could pass the checks in release).
        let header = |h: &str| {
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(h.as_bytes());
            b
        };
        let e = parse_header(&header(
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}}"#,
        ))
        .unwrap_err();
        assert!(e.contains("impossible shape"), "{e}");
        let e = parse_header(&header(
            r#"{"a":{"dtype":"F64","shape":[4294967296,536870912],"data_offsets":[0,0]}}"#,
        ))
        .unwrap_err();
        assert!(e.contains("more than 2^64"), "{e}");
        let h = parse_header(&header(
            r#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,18446744073709551615]}}"#,
        ))
        .unwrap();
        assert_eq!(h.expected_file_size(), u64::MAX);
        // A length claiming more than the file holds is refused before anything is allocated.
        let mut b = header("{}");
        b[..8].copy_from_slice(&(50u64 << 20).to_le_bytes());
        assert!(parse_header(&b).unwrap_err().contains("cut short"));
    }

    #[test]
    fn rejects_garbage() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.safetensors");
        std::fs::write(&p, b"abc").unwrap();
        assert!(read_header(&p).unwrap_err().contains("shorter"));
        std::fs::write(&p, [u8::MAX; 16]).unwrap();
        assert!(read_header(&p).unwrap_err().contains("implausible"));
        let mut b = 4u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{{{{");
        std::fs::write(&p, b).unwrap();
        assert!(read_header(&p).unwrap_err().contains("not valid JSON"));
    }
}
