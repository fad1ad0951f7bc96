//! The Hugging Face hub cache (`$HF_HUB_CACHE`), the store `mlx_lm` and `huggingface_hub` already
//! use: `models--<org>--<name>/{refs/<ref>, snapshots/<rev>/<file> -> ../../blobs/<hash>, blobs/}`.
//! A repo's `refs/main` is shown as the tag `latest`; any other ref is shown under its own name.

use super::name::{ModelName, DEFAULT_HOST};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One snapshot of one repo, as found in the cache.
#[derive(Debug, Clone)]
pub struct HfEntry {
    pub repo_id: String,
    pub repo_dir: PathBuf,
    /// The ref name (`main`, or a branch or tag).
    pub ref_name: String,
    pub revision: String,
    pub snapshot: PathBuf,
    pub modified: SystemTime,
}

impl HfEntry {
    /// The Ollama-style name: `org/repo:latest` for `refs/main`, `org/repo:<ref>` otherwise.
    pub fn name(&self) -> Option<ModelName> {
        let (org, repo) = self.repo_id.split_once('/')?;
        let tag = if self.ref_name == "main" {
            "latest"
        } else {
            &self.ref_name
        };
        ModelName::parse(&format!("{org}/{repo}:{tag}"))
            .ok()
            .map(|mut n| {
                n.host = DEFAULT_HOST.to_owned();
                n
            })
    }
}

/// Every (repo, ref) whose snapshot directory exists.
pub fn scan(cache: &Path) -> Vec<HfEntry> {
    let Ok(rd) = fs::read_dir(cache) else {
        return Vec::new();
    };
    rd.flatten().flat_map(|e| scan_repo(&e.path())).collect()
}

/// The cache directory of a repo id (`org/name` -> `models--org--name`), exactly as spelled.
pub fn repo_dir(cache: &Path, repo_id: &str) -> PathBuf {
    cache.join(format!("models--{}", repo_id.replacen('/', "--", 1)))
}

/// The (ref, snapshot) entries of one `models--<org>--<name>` directory.
pub fn scan_repo(repo_dir: &Path) -> Vec<HfEntry> {
    let mut out = Vec::new();
    let dir_name = repo_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let Some(rest) = dir_name.strip_prefix("models--") else {
        return out;
    };
    let repo_id = rest.replacen("--", "/", 1);
    let Ok(refs) = fs::read_dir(repo_dir.join("refs")) else {
        return out;
    };
    for r in refs.flatten() {
        if !r.path().is_file() {
            continue; // refs/pr/<n> directories hold pull-request refs: not models
        }
        let ref_name = r.file_name().to_string_lossy().into_owned();
        if super::ollama::is_temp_name(&ref_name) {
            continue; // a ref being written (or left by a killed pull): not a tag
        }
        let Ok(rev) = fs::read_to_string(r.path()) else {
            continue;
        };
        let revision = rev.trim().to_owned();
        if !is_revision(&revision) {
            continue;
        }
        let snapshot = repo_dir.join("snapshots").join(&revision);
        if !snapshot.is_dir() {
            continue;
        }
        let modified = newest_mtime(&snapshot).unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(HfEntry {
            repo_id: repo_id.clone(),
            repo_dir: repo_dir.to_path_buf(),
            ref_name,
            revision,
            snapshot,
            modified,
        });
    }
    out
}

/// Removes the temporary ref files killed pulls left in the cache (`<ref>-partial-<pid>-<n>`,
/// whose process is gone). Returns how many were removed.
pub fn remove_stale_temps(cache: &Path) -> usize {
    let Ok(rd) = fs::read_dir(cache) else {
        return 0;
    };
    rd.flatten()
        .map(|e| super::ollama::remove_stale_temps_in(&e.path().join("refs")))
        .sum()
}

/// A revision names a directory: keep it a plain hex-ish token, never a path.
pub fn is_revision(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A repo id names a directory too: `org/name`, each part a plain token (letters, digits, `-`,
/// `_`, `.`, never first a `.`), so no spelling of it climbs out of the cache.
pub fn is_repo_id(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    s.split_once('/')
        .is_some_and(|(org, name)| part(org) && part(name))
}

/// The newest modification time of a snapshot's entries (the symlinks themselves).
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = fs::symlink_metadata(dir).ok()?.modified().ok()?;
    for e in fs::read_dir(dir).ok()?.flatten() {
        if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    }
    Some(newest)
}

/// Total size of a snapshot's files (following the symlinks into `blobs/`).
pub fn snapshot_size(dir: &Path) -> u64 {
    walk_files(dir)
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The blob names a snapshot's symlinks point to.
fn blobs_of(snapshot: &Path) -> HashSet<String> {
    walk_files(snapshot)
        .iter()
        .filter_map(|p| fs::read_link(p).ok())
        .filter_map(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

/// Removes one revision of a repo completely: first the refs that point at it (so the model stops
/// being listed at once), then the snapshot, then every blob no other snapshot uses, and any
/// partial download. A repo left with no snapshot is removed whole.
pub fn delete(entry: &HfEntry) -> io::Result<()> {
    let repo = &entry.repo_dir;
    if let Ok(refs) = fs::read_dir(repo.join("refs")) {
        for r in refs.flatten() {
            let points_here = fs::read_to_string(r.path())
                .map(|s| s.trim() == entry.revision)
                .unwrap_or(false);
            if points_here {
                fs::remove_file(r.path())?;
            }
        }
    }
    let doomed = blobs_of(&entry.snapshot);
    fs::remove_dir_all(&entry.snapshot)?;
    let mut kept = HashSet::new();
    if let Ok(snaps) = fs::read_dir(repo.join("snapshots")) {
        for s in snaps.flatten() {
            kept.extend(blobs_of(&s.path()));
        }
    }
    if let Ok(blobs) = fs::read_dir(repo.join("blobs")) {
        for b in blobs.flatten() {
            let name = b.file_name().to_string_lossy().into_owned();
            let partial = name.ends_with(".incomplete") || name.ends_with(".lock");
            if partial || (doomed.contains(&name) && !kept.contains(&name)) {
                fs::remove_file(b.path())?;
            }
        }
    }
    if kept.is_empty() && is_empty_dir(&repo.join("snapshots")) {
        fs::remove_dir_all(repo)?;
    }
    Ok(())
}

fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut rd| rd.next().is_none())
        .unwrap_or(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Lays out `models--org--name` with one snapshot holding `files` (name, bytes).
    pub fn make_repo(cache: &Path, repo_id: &str, rev: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
        let snap = repo.join("snapshots").join(rev);
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::create_dir_all(repo.join("refs")).unwrap();
        fs::create_dir_all(&snap).unwrap();
        for (name, bytes) in files {
            let blob = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
            fs::write(repo.join("blobs").join(&blob), bytes).unwrap();
            symlink(format!("../../blobs/{blob}"), snap.join(name)).unwrap();
        }
        fs::write(repo.join("refs").join("main"), rev).unwrap();
        repo
    }

    #[test]
    fn scans_refs_and_snapshots() {
        let d = tempfile::tempdir().unwrap();
        make_repo(d.path(), "org/model-a", "abc123", &[("config.json", b"{}")]);
        let entries = scan(d.path());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].repo_id, "org/model-a");
        assert_eq!(
            entries[0].name().unwrap().display_shortest(),
            "org/model-a:latest"
        );
        assert_eq!(snapshot_size(&entries[0].snapshot), 2);
    }

    #[test]
    fn delete_keeps_blobs_shared_with_other_revisions() {
        let d = tempfile::tempdir().unwrap();
        let repo = make_repo(
            d.path(),
            "org/m",
            "rev1",
            &[("a", b"shared"), ("b", b"only-1")],
        );
        // a second revision sharing blob "a", reachable through refs/v2
        let snap2 = repo.join("snapshots").join("rev2");
        fs::create_dir_all(&snap2).unwrap();
        let shared = fs::read_link(repo.join("snapshots/rev1/a")).unwrap();
        symlink(&shared, snap2.join("a")).unwrap();
        fs::write(repo.join("refs").join("v2"), "rev2").unwrap();
        fs::write(repo.join("blobs").join("x.incomplete"), b"partial").unwrap();

        let e = scan(d.path())
            .into_iter()
            .find(|e| e.revision == "rev1")
            .unwrap();
        delete(&e).unwrap();
        assert!(!repo.join("refs/main").exists());
        assert!(!repo.join("snapshots/rev1").exists());
        assert!(
            fs::metadata(snap2.join("a")).is_ok(),
            "shared blob must survive"
        );
        assert_eq!(fs::read_dir(repo.join("blobs")).unwrap().count(), 1);

        let e2 = scan(d.path()).pop().unwrap();
        delete(&e2).unwrap();
        assert!(
            !repo.exists(),
            "a repo with no snapshot left is removed whole"
        );
    }
}
