//! Ollama's own model store (`OLLAMA_MODELS`), in Ollama's exact layout:
//! `manifests/<host>/<namespace>/<model>/<tag>` (JSON manifests) and `blobs/sha256-<hex>`.
//!
//! The store may be shared with a real Ollama, so it is never left damaged: blobs and manifests
//! are written to a temporary file in the same directory and renamed into place, a manifest is
//! written only once every blob it names is complete, and deleting a model removes exactly the
//! blobs no other manifest references.

use super::manifest::Manifest;
use super::name::ModelName;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest format")]
pub struct InvalidDigest;

/// A validated blob digest: `sha256:` and 64 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobDigest(String);

impl BlobDigest {
    /// Accepts `sha256:<hex>` and `sha256-<hex>`; anything else (path tricks included) is invalid.
    pub fn parse(s: &str) -> Result<BlobDigest, InvalidDigest> {
        let hex = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("sha256-"))
            .ok_or(InvalidDigest)?;
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(BlobDigest(format!("sha256:{}", hex.to_ascii_lowercase())))
        } else {
            Err(InvalidDigest)
        }
    }

    /// `sha256:<hex>`
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name Ollama uses: `sha256-<hex>`.
    pub fn file_name(&self) -> String {
        self.0.replacen(':', "-", 1)
    }

    pub fn of_bytes(bytes: &[u8]) -> BlobDigest {
        BlobDigest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }
}

#[derive(Debug, Clone)]
pub struct OllamaStore {
    root: PathBuf,
}

impl OllamaStore {
    pub fn new(root: PathBuf) -> OllamaStore {
        OllamaStore { root }
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    pub fn blob_path(&self, d: &BlobDigest) -> PathBuf {
        self.blobs_dir().join(d.file_name())
    }

    /// The path of a name's manifest. Name parts cannot hold `/` or start with `.`, so this
    /// stays inside `manifests/`.
    pub fn manifest_path(&self, n: &ModelName) -> PathBuf {
        self.manifests_dir()
            .join(&n.host)
            .join(&n.namespace)
            .join(&n.model)
            .join(&n.tag)
    }

    /// Every manifest, exactly four levels below `manifests/`, with its stored-case name.
    pub fn scan(&self) -> Vec<(ModelName, PathBuf)> {
        let mut out = Vec::new();
        for host in subdirs(&self.manifests_dir()) {
            for ns in subdirs(&host) {
                for model in subdirs(&ns) {
                    let Ok(rd) = fs::read_dir(&model) else {
                        continue;
                    };
                    for tag in rd.flatten() {
                        let path = tag.path();
                        if !path.is_file() || is_temp_name(&tag.file_name().to_string_lossy()) {
                            continue;
                        }
                        let part = |p: &Path| {
                            p.file_name()
                                .unwrap_or_default()
                                .to_string_lossy()
                                .into_owned()
                        };
                        let raw = format!(
                            "{}/{}/{}:{}",
                            part(&host),
                            part(&ns),
                            part(&model),
                            part(&path)
                        );
                        if let Ok(name) = ModelName::parse(&raw) {
                            out.push((name, path));
                        }
                    }
                }
            }
        }
        out
    }

    /// Finds a manifest by name, ignoring case as Ollama does; returns the stored-case name.
    pub fn find(&self, want: &ModelName) -> Option<(ModelName, PathBuf)> {
        let exact = self.manifest_path(want);
        if exact.is_file() {
            return Some((want.clone(), exact));
        }
        self.scan().into_iter().find(|(n, _)| n.matches(want))
    }

    pub fn read_manifest(&self, path: &Path) -> io::Result<Manifest> {
        let bytes = fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads a small blob (template, system, params...) as text.
    pub fn read_text(&self, digest: &str) -> Option<String> {
        let d = BlobDigest::parse(digest).ok()?;
        fs::read_to_string(self.blob_path(&d)).ok()
    }

    /// Stores bytes as a blob (a no-op when it exists) and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> io::Result<BlobDigest> {
        let d = BlobDigest::of_bytes(bytes);
        let path = self.blob_path(&d);
        if !path.is_file() {
            fs::create_dir_all(self.blobs_dir())?;
            write_atomic(&path, bytes)?;
        }
        Ok(d)
    }

    /// Writes a manifest in Ollama's own encoding ([`Manifest::to_bytes`]), after checking every
    /// blob it names is present.
    pub fn write_manifest(&self, name: &ModelName, m: &Manifest) -> io::Result<()> {
        self.write_manifest_bytes(name, &m.to_bytes())
    }

    /// Writes a manifest's exact bytes (a copy's source, a registry's reply), after checking they
    /// are a manifest and every blob it names is present. Ollama copies and pulls byte for byte,
    /// so a model keeps its ID (the SHA-256 of these bytes).
    pub fn write_manifest_bytes(&self, name: &ModelName, bytes: &[u8]) -> io::Result<()> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        for d in m.digests() {
            let ok = BlobDigest::parse(d)
                .map(|d| self.blob_path(&d).is_file())
                .unwrap_or(false);
            if !ok {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("blob {d} is missing"),
                ));
            }
        }
        let path = self.manifest_path(name);
        fs::create_dir_all(path.parent().expect("manifest path has a parent"))?;
        write_atomic(&path, bytes)
    }

    /// Removes a manifest, then every blob of it that no other manifest references, then empty
    /// directories.
    pub fn delete(&self, manifest_path: &Path) -> io::Result<()> {
        let doomed = self.read_manifest(manifest_path).ok();
        fs::remove_file(manifest_path)?;
        if let Some(m) = doomed {
            self.remove_unreferenced(m.digests());
        }
        // Prune the now-empty tag/model/namespace/host directories, never `manifests/` itself.
        let mut dir = manifest_path.parent();
        while let Some(d) = dir {
            if d == self.manifests_dir() || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    /// Removes the temporary files an ollmlx process that is gone left in the blobs and
    /// manifests directories (`temp_sibling` names: `<name>-partial-<pid>-<random>`, from an
    /// upload or a write that was killed). Ollama's own `-partial` and `-partial-<n>` download
    /// parts, and the files of a live process, are left alone. Returns how many were removed.
    pub fn remove_stale_temps(&self) -> usize {
        let mut dirs = vec![self.blobs_dir()];
        for host in subdirs(&self.manifests_dir()) {
            for ns in subdirs(&host) {
                dirs.extend(subdirs(&ns));
            }
        }
        dirs.iter().map(|d| remove_stale_temps_in(d)).sum()
    }

    /// Removes the blobs among `digests` that no manifest references (the blobs of a manifest
    /// just deleted, or of a pull refused after its download).
    pub fn remove_unreferenced<'a>(&self, digests: impl Iterator<Item = &'a str>) {
        let in_use: HashSet<String> = self
            .scan()
            .iter()
            .filter_map(|(_, p)| self.read_manifest(p).ok())
            .flat_map(|m| m.digests().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        for d in digests {
            if in_use.contains(d) {
                continue;
            }
            if let Ok(d) = BlobDigest::parse(d) {
                let _ = fs::remove_file(self.blob_path(&d));
            }
        }
    }
}

fn subdirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Writes a file through a temporary sibling and a rename, so readers (and a real Ollama) never
/// see it half-written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The pid in a `temp_sibling` name (`<name>-partial-<pid>-<random>`), if it is one.
/// Removes the stale `temp_sibling` files directly in `dir` (see
/// [`OllamaStore::remove_stale_temps`]).
pub fn remove_stale_temps_in(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether `name` is a temporary file of ours (`temp_sibling`), never a model's tag or ref.
pub fn is_temp_name(name: &str) -> bool {
    temp_owner(name).is_some()
}

fn temp_owner(name: &str) -> Option<u32> {
    let (_, tail) = name.rsplit_once("-partial-")?;
    let (pid, random) = tail.split_once('-')?;
    random.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this pid exists (signal 0 checks without sending anything).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the pid exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A unique temporary path next to `path`. Ollama's pruning removes stray `sha256-*-partial`
/// names after an hour, which is the right fate for a leftover from a crash.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(
        "{name}-partial-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::manifest::{Layer, MEDIA_MODEL};

    #[test]
    fn digests_are_validated() {
        let hex = "a".repeat(64);
        assert_eq!(
            BlobDigest::parse(&format!("sha256:{hex}"))
                .unwrap()
                .file_name(),
            format!("sha256-{hex}")
        );
        assert!(BlobDigest::parse(&format!("sha256-{hex}")).is_ok());
        for bad in [
            "sha256:abc",
            "md5:x",
            &format!("sha256:../../{}", &hex[..58]),
            &format!("sha256:{}g", &hex[..63]),
            "",
        ] {
            assert!(BlobDigest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stale_temp_files_of_dead_processes_are_removed_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let store = OllamaStore::new(d.path().to_path_buf());
        fs::create_dir_all(store.blobs_dir()).unwrap();
        let blob = format!("sha256-{}", "a".repeat(64));
        // A pid that cannot exist (above Linux's and macOS's pid limits).
        let dead = format!("{blob}-partial-999999999-42");
        let mine = format!("{blob}-partial-{}-7", std::process::id());
        let ollamas = [
            format!("{blob}-partial"),
            format!("{blob}-partial-0"),
            blob.clone(),
        ];
        for name in [&dead, &mine].into_iter().chain(ollamas.iter()) {
            fs::write(store.blobs_dir().join(name), b"x").unwrap();
        }
        assert_eq!(store.remove_stale_temps(), 1);
        assert!(!store.blobs_dir().join(&dead).exists());
        assert!(
            store.blobs_dir().join(&mine).exists(),
            "a live process's file stays"
        );
        for name in &ollamas {
            assert!(store.blobs_dir().join(name).exists(), "{name} stays");
        }
        assert_eq!(temp_owner("x-partial-12-34"), Some(12));
        assert_eq!(temp_owner("x-partial-0"), None);
    }

    /// A manifest write killed before its rename leaves `<tag>-partial-<pid>-<n>`, a valid tag
    /// name: it is never listed as a model, and start-up removes it.
    #[test]
    fn a_killed_manifest_write_is_not_a_model_and_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let store = OllamaStore::new(d.path().to_path_buf());
        let dir = store
            .manifests_dir()
            .join("registry.ollama.ai/library/tiny");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("latest"), b"{}").unwrap();
        fs::write(dir.join("latest-partial-999999999-42"), b"{}").unwrap();
        let names: Vec<String> = store
            .scan()
            .iter()
            .map(|(n, _)| n.display_shortest())
            .collect();
        assert_eq!(names, ["tiny:latest"]);
        assert_eq!(store.remove_stale_temps(), 1);
        assert!(dir.join("latest").exists());
        assert!(!dir.join("latest-partial-999999999-42").exists());
    }

    #[test]
    fn write_scan_find_delete() {
        let d = tempfile::tempdir().unwrap();
        let s = OllamaStore::new(d.path().to_path_buf());
        let model = s.write_blob(b"GGUF-weights").unwrap();
        let config = s.write_blob(b"{}").unwrap();
        let layer = |dg: &BlobDigest, mt: &str, n: u64| Layer {
            media_type: mt.into(),
            digest: dg.as_str().into(),
            size: n,
            from: None,
            name: None,
        };
        let m = Manifest::new(layer(&config, "c", 2), vec![layer(&model, MEDIA_MODEL, 12)]);
        let a = ModelName::parse("Llama3:8B").unwrap();
        let b = ModelName::parse("user/copy:latest").unwrap();
        s.write_manifest(&a, &m).unwrap();
        assert_eq!(fs::read(s.manifest_path(&a)).unwrap(), m.to_bytes());
        // Other bytes of the same manifest are kept as they are (a copy, a registry's reply).
        let pretty = serde_json::to_vec_pretty(&m).unwrap();
        s.write_manifest_bytes(&b, &pretty).unwrap();
        assert_eq!(fs::read(s.manifest_path(&b)).unwrap(), pretty);
        assert!(s.write_manifest_bytes(&b, b"not json").is_err());
        assert_eq!(s.scan().len(), 2);
        let (stored, path) = s.find(&ModelName::parse("llama3:8b").unwrap()).unwrap();
        assert_eq!(
            stored.display_shortest(),
            "Llama3:8B",
            "stored case is kept"
        );

        s.delete(&path).unwrap();
        assert!(s.blob_path(&model).is_file(), "still used by the copy");
        let (_, p2) = s.find(&b).unwrap();
        s.delete(&p2).unwrap();
        assert!(!s.blob_path(&model).exists() && !s.blob_path(&config).exists());
        assert!(
            !d.path().join("manifests/registry.ollama.ai").exists(),
            "empty dirs pruned"
        );
        assert!(d.path().join("manifests").exists());
    }

    #[test]
    fn manifests_need_their_blobs() {
        let d = tempfile::tempdir().unwrap();
        let s = OllamaStore::new(d.path().to_path_buf());
        let missing = Layer {
            media_type: "x".into(),
            digest: format!("sha256:{}", "b".repeat(64)),
            size: 1,
            from: None,
            name: None,
        };
        let m = Manifest::new(missing.clone(), vec![]);
        assert!(s
            .write_manifest(&ModelName::parse("m").unwrap(), &m)
            .is_err());
        assert!(s.scan().is_empty());
    }
}
