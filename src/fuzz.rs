//! Fuzz targets: one function for each parser that reads bytes a stranger can write (a GGUF or
//! safetensors file, a manifest or blob from a registry, a Modelfile, a Go template, a model
//! name or digest from a URL). Each takes arbitrary bytes and holds the parser to its contract:
//! it returns an error for bad input and never panics, never overflows the stack, and never
//! allocates more than the input can justify.
//!
//! The same functions run two ways (see docs/testing.md, "Fuzzing"):
//! - for hours under libFuzzer: `fuzz/` is a cargo-fuzz crate (nightly) with one binary per
//!   target calling into [`TARGETS`];
//! - for a few seconds in `cargo test` on stable (the tests below): every target over its
//!   committed seeds in `fuzz/corpus/<target>/`, then a fixed-seed batch of mutations of them.
//!
//! Not part of the daemon's API: it is public only so that the fuzz crate can reach it.

use crate::store::{gguf, hf, manifest, name::ModelName, ollama::BlobDigest, safetensors};
// The Go template engine, named once: it is moving into its own crate, and this line follows it.
use crate::template as engine;
use serde_json::{json, Value};
use std::path::{Component, Path};

/// A fuzz target: a name (its corpus folder and cargo-fuzz binary) and the function.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "gguf",
        run: gguf,
    },
    Target {
        name: "safetensors",
        run: safetensors,
    },
    Target {
        name: "manifest",
        run: manifest,
    },
    Target {
        name: "model_name",
        run: model_name,
    },
    Target {
        name: "digest",
        run: digest,
    },
    Target {
        name: "modelfile",
        run: modelfile,
    },
    Target {
        name: "template",
        run: template,
    },
];

/// The most bytes [`unpack`] makes from one input: far beyond any header the fuzzer needs, far
/// below what would make a run slow.
pub const MAX_UNPACKED: usize = 8 << 20;

/// GGUF headers. Input starting with `GGUF` is a file as it is; anything else is first
/// [`unpack`]ed, which lets a small input describe a large, repetitive file (500,000 nested
/// arrays are 6 MB as a file but a 14-byte record here).
pub fn gguf(data: &[u8]) {
    let unpacked;
    let bytes = if data.starts_with(b"GGUF") {
        data
    } else {
        unpacked = unpack(data);
        &unpacked[..]
    };
    for keep_arrays in [false, true] {
        let Ok(g) = gguf::parse(bytes, keep_arrays) else {
            continue;
        };
        // What /api/show and /api/tags derive from a header.
        let arch = g.architecture();
        let count = g.parameter_count();
        let _ = crate::store::facts::human_number(count);
        let _ = g.quantization_level();
        let _ = (g.arch_u64("context_length"), g.arch_u64(&arch));
        let _ = crate::store::facts::capabilities(g.str("tokenizer.chat_template"));
        for t in &g.tensors {
            let _ = gguf::ggml_type_name(t.ggml_type);
        }
    }
}

/// Expands a compact description of a file into its bytes. The input is a sequence of records,
/// each `flags: u8, len: u8, payload: [u8; len]`. The payload is written once, or, when bit 0 of
/// `flags` is set, 2^n times where n is `flags >> 1` (mod 32), up to [`MAX_UNPACKED`] bytes in
/// all. A count as an exponent in the same byte as the switch makes "this field, 100,000 times"
/// one byte away from "this field": libFuzzer's byte-level mutations find that quickly, where a
/// plain integer count would need two unrelated bytes changed at once. The seeds in
/// `fuzz/corpus/gguf/` include real headers packed one record per field.
pub fn unpack(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [flags, len, rest @ ..] = data {
        let len = (*len as usize).min(rest.len());
        let (payload, tail) = rest.split_at(len);
        data = tail;
        if payload.is_empty() {
            continue;
        }
        let times = if flags & 1 == 1 {
            1usize << ((flags >> 1) % 32)
        } else {
            1
        };
        // Past the cap, the copies that fit are the end of the file.
        let room = (MAX_UNPACKED - out.len()) / payload.len();
        for _ in 0..times.min(room) {
            out.extend_from_slice(payload);
        }
        if times > room {
            break;
        }
    }
    out
}

/// Safetensors headers (MLX weights in the Hugging Face cache).
pub fn safetensors(data: &[u8]) {
    if let Ok(h) = safetensors::parse_header(data) {
        let _ = h.expected_file_size();
        for t in &h.tensors {
            let _ = t.elements();
        }
    }
}

/// Manifests and the small JSON blobs they name (the config blob, ollmlx's Hugging Face
/// reference): what a registry or a shared `OLLAMA_MODELS` hands us.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<manifest::Manifest>(data) {
        let _ = m.total_size();
        let _ = m.layer(manifest::MEDIA_MODEL);
        for d in m.digests() {
            let _ = BlobDigest::parse(d);
        }
        // What we write must read back as what we wrote.
        let back: manifest::Manifest =
            serde_json::from_slice(&m.to_bytes()).expect("a written manifest reads back");
        assert_eq!(back, m, "a manifest changes when written and read back");
    }
    if let Ok(c) = serde_json::from_slice::<manifest::ConfigBlob>(data) {
        let bytes = serde_json::to_vec(&c).expect("a config blob serializes");
        let _: manifest::ConfigBlob =
            serde_json::from_slice(&bytes).expect("a written config blob reads back");
    }
    if let Ok(r) = serde_json::from_slice::<Value>(data) {
        let (repo, rev) = (
            r["repo_id"].as_str().unwrap_or(""),
            r["revision"].as_str().unwrap_or(""),
        );
        if hf::is_repo_id(repo) && hf::is_revision(rev) {
            let cache = Path::new("/cache");
            let dir = hf::repo_dir(cache, repo).join("snapshots").join(rev);
            assert_stays_inside(cache, &dir);
        }
    }
}

/// Model names, as every endpoint and the CLI take them.
pub fn model_name(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let Ok(n) = ModelName::parse(&raw) else {
        return;
    };
    // A name is a path in the store: it must never leave `manifests/`.
    let root = Path::new("/models/manifests");
    let path = crate::store::ollama::OllamaStore::new("/models".into()).manifest_path(&n);
    assert_stays_inside(root, &path);
    // The name we print names the same model.
    let shown = n.display_shortest();
    let again = ModelName::parse(&shown).unwrap_or_else(|_| panic!("{shown:?} does not parse"));
    assert!(
        again.matches(&n),
        "{raw:?} prints as {shown:?}, another name"
    );
    let _ = n.is_hf_addressable();
}

/// Blob digests (`/api/blobs/{digest}`, manifests).
pub fn digest(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let Ok(d) = BlobDigest::parse(&raw) else {
        return;
    };
    let file = d.file_name();
    assert!(
        file.len() == 71 && file.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{raw:?} names the blob file {file:?}"
    );
    assert_eq!(BlobDigest::parse(d.as_str()), Ok(d.clone()));
}

/// Modelfiles (`ollmlx create`; UTF-8, or UTF-16 with a byte-order mark).
pub fn modelfile(data: &[u8]) {
    let Ok(m) = crate::cli::modelfile::Modelfile::parse(data) else {
        return;
    };
    for c in &m.commands {
        let _ = crate::cli::modelfile::parameter_value(&c.name, &c.args);
    }
    // Printed back, it parses again (not always to the same commands: Ollama's printer does not
    // quote every value it would need to).
    let _ = crate::cli::modelfile::Modelfile::parse_str(&m.to_string());
}

/// Go templates (`TEMPLATE` layers of GGUF models): parsed, inspected and executed as a chat, a
/// legacy prompt and fill-in-the-middle, against fixed data.
pub fn template(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    let Ok(t) = engine::prompt::parse(&source) else {
        return;
    };
    let _ = engine::prompt::vars(&t);
    let _ = engine::prompt::capabilities(&t);
    let _ = engine::prompt::thinking_tags(&t);
    let _ = t.render(&json!({"A": 1, "L": [1, "a", null, {"k": []}], "M": {"a": {"b": 1.5}}}));
    let messages: Vec<crate::api::Message> = serde_json::from_value(json!([
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u", "images": ["aW1n"]},
        {"role": "assistant", "content": "", "thinking": "t",
         "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
        {"role": "tool", "content": "r", "tool_name": "f"},
        {"role": "user", "content": "u2"},
    ]))
    .expect("fixed messages");
    let tools = [
        json!({"type": "function", "function": {"name": "f", "description": "d",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}),
    ];
    let think = engine::prompt::Think::from_request(Some(&json!("high")));
    let _ = engine::prompt::render_chat(&t, &messages, &tools, &think);
    let _ = engine::prompt::render_fim(&t, "p", "s", &think);
}

/// Panics when `path` (under `root`) climbs out of `root` or replaces it.
fn assert_stays_inside(root: &Path, path: &Path) {
    let rest = path
        .strip_prefix(root)
        .unwrap_or_else(|_| panic!("{path:?} is outside {root:?}"));
    assert!(
        rest.components().all(|c| matches!(c, Component::Normal(_))),
        "{path:?} climbs out of {root:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The committed seeds of a target.
    fn corpus(name: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// xorshift64: fixed seeds, so a failure here reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Interesting integers, as libFuzzer's mutators also try.
    const MAGIC_U64: [u64; 7] = [0, 1, 8, 255, 1 << 31, u64::MAX / 2, u64::MAX];

    /// One to four of libFuzzer's cheaper mutations: flip a bit, set a byte, write an extreme
    /// integer, insert, erase or duplicate a span, splice in part of another seed, truncate.
    fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut b = input.to_vec();
        for _ in 0..rng.below(4) + 1 {
            let at = rng.below(b.len() + 1);
            match rng.below(8) {
                0 if !b.is_empty() => {
                    let i = at.min(b.len() - 1);
                    b[i] ^= 1 << rng.below(8);
                }
                1 if !b.is_empty() => {
                    let i = at.min(b.len() - 1);
                    b[i] = rng.next() as u8;
                }
                2 => {
                    let v = MAGIC_U64[rng.below(MAGIC_U64.len())].to_le_bytes();
                    let n = [1, 2, 4, 8][rng.below(4)];
                    let end = (at + n).min(b.len());
                    b.splice(at..end, v[..n].iter().copied());
                }
                3 => {
                    let n = rng.below(16) + 1;
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    b.splice(at..at, bytes);
                }
                4 => {
                    let end = (at + rng.below(16) + 1).min(b.len());
                    b.drain(at..end);
                }
                5 => {
                    let end = (at + rng.below(32) + 1).min(b.len());
                    let span = b[at..end].to_vec();
                    let times = rng.below(8) + 1;
                    for _ in 0..times {
                        b.splice(at..at, span.iter().copied());
                    }
                }
                6 => {
                    let other = &seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len() + 1);
                    let end = (from + rng.below(64) + 1).min(other.len());
                    b.splice(at..at, other[from..end].iter().copied());
                }
                _ => b.truncate(at),
            }
        }
        b
    }

    /// How long each target's batch of mutations may take: every target together stays within
    /// a few seconds of a debug build.
    const BUDGET: Duration = Duration::from_millis(600);
    const MUTATIONS: usize = 3000;

    #[test]
    fn every_target_survives_its_seeds_and_a_batch_of_mutations() {
        for (i, target) in TARGETS.iter().enumerate() {
            let seeds = corpus(target.name);
            assert!(!seeds.is_empty(), "fuzz/corpus/{} is empty", target.name);
            for s in &seeds {
                (target.run)(s);
            }
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ i as u64);
            let start = Instant::now();
            let mut ran = 0;
            while ran < MUTATIONS && start.elapsed() < BUDGET {
                let seed = &seeds[rng.below(seeds.len())];
                let input = mutate(&mut rng, seed, &seeds);
                (target.run)(&input);
                ran += 1;
            }
            eprintln!(
                "{}: {} seeds, {ran} mutations in {:?}",
                target.name,
                seeds.len(),
                start.elapsed()
            );
        }
    }

    #[test]
    fn unpack_repeats_records_and_stops_at_its_cap() {
        // "GG" once, then "UF" 2^2 times.
        let input = [0, 2, b'G', b'G', 1 | 2 << 1, 2, b'U', b'F'];
        assert_eq!(unpack(&input), b"GGUFUFUFUF");
        // A record cut short keeps what is there.
        assert_eq!(unpack(&[0, 9, b'x']), b"x");
        // 2^31 copies stop at the cap, and nothing follows them.
        let big = [0xff, 3, 1, 2, 3, 0, 1, b'z'];
        let out = unpack(&big);
        assert!(out.len() <= MAX_UNPACKED && out.len() > MAX_UNPACKED - 3);
        assert!(!out.contains(&b'z'));
    }
}
