//! Local stand-ins for the two places `ollmlx pull` downloads from, speaking their real protocols
//! (docs: pull-notes.md):
//!
//! - [`HfHub`]: the Hugging Face hub. Revision info, the recursive tree (paged on request),
//!   `resolve` for files: small files directly, LFS files as a 302 to a "CDN" on another port
//!   with a signed query string. Gated and unknown repos, unknown revisions and missing files
//!   answer with the hub's status codes, `X-Error-Code` headers and `{"error": ...}` bodies.
//! - [`Registry`]: the Ollama registry. Manifests, blob `HEAD`s, and blob `GET`s as a 307 to the
//!   CDN.
//!
//! The CDN serves `Range` requests (`bytes=N-`, `bytes=N-M`, `bytes=-N`) with 206 and
//! `Content-Range`, and refuses (403) any URL without a signature the server handed out.
//!
//! Each server runs its two listeners (itself and its CDN) on `127.0.0.1:0` in a thread of its
//! own with its own tokio runtime, so plain `#[test]` functions can use them with
//! `reqwest::blocking`. Dropping the server stops it and closes every connection.
//!
//! Both servers record every request ([`Hit`]) and take faults at any time through a
//! [`Control`]: they deref to theirs, and [`HfHub::control`] / [`Registry::control`] hand out a
//! clone for another thread.
//!
//! Faults and byte counters name a file by a *key*:
//! - hub: the file's path in its repo (`model.safetensors`), or `org/name/path` when several repos
//!   hold the same path;
//! - registry: a blob's digest (`sha256:<hex>` or the bare hex), or a manifest as
//!   `namespace/model:tag`.

// Not every test uses every helper; handlers return an error `Response` early as `Err`.
#![allow(dead_code, clippy::result_large_err)]

mod cdn;
mod control;
mod digest;
mod hf;
mod http;
mod registry;
mod server;
#[cfg(test)]
mod tests;

// The servers' public items, at the paths the other test modules name (`crate::hubs::HfHub`);
// not every one is used yet.
#[allow(unused_imports)]
pub use control::{Control, Hit, Listener};
#[allow(unused_imports)]
pub use digest::{git_blob_sha1, sha1, sha256_digest, sha256_hex};
#[allow(unused_imports)]
pub use hf::{is_lfs, HfHub, HfRepo, LFS_MIN_SIZE};
#[allow(unused_imports)]
pub use registry::{Registry, RegistryModel, CONFIG_V1, MANIFEST_V2, MODEL_LAYER, REGISTRY_CONFIG};
