//! What is derived from a model's files, remembered by the files' identity.
//!
//! `/api/tags` and `/api/show` need every model's facts on every call, and clients poll them
//! (Open WebUI, IDE plugins, `ollmlx list`). Reading a GGUF header walks its vocabulary; an MLX
//! model's facts come from its config, tokenizer config, chat template and every safetensors
//! header. So each result is kept with the identity of what it was read from, and read again
//! only when that changes. An identity is cheap to take: one `stat` for a file, one directory
//! listing and a `stat` per entry for an MLX snapshot (following the hub cache's symlinks to the
//! blobs, so a re-downloaded file changes it). Failures are never remembered.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A hash of what a file or directory holds, as far as `stat` can tell.
pub type Identity = u64;

/// More distinct paths than this and a memo starts over (a store has far fewer models).
const MAX_ENTRIES: usize = 512;

/// Values derived from files, by path, each valid while the path's identity is unchanged.
pub struct Memo<V> {
    map: Mutex<HashMap<PathBuf, (Identity, V)>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Memo<V> {
    /// The value remembered for `path` if it was derived from this `id`, else `make()`'s
    /// (remembered when it succeeds).
    pub fn get_or_try<E>(
        &self,
        path: &Path,
        id: Identity,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some((known, v)) = self.map.lock().unwrap().get(path) {
            if *known == id {
                return Ok(v.clone());
            }
        }
        let v = make()?;
        let mut map = self.map.lock().unwrap();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(path.to_path_buf(), (id, v.clone()));
        Ok(v)
    }

    /// Like [`Memo::get_or_try`] for a value that cannot fail.
    pub fn get_or(&self, path: &Path, id: Identity, make: impl FnOnce() -> V) -> V {
        self.get_or_try(path, id, || Ok::<V, std::convert::Infallible>(make()))
            .unwrap_or_else(|never| match never {})
    }
}

/// A file's length and modification time (of its target, for a symlink).
pub fn file_identity(path: &Path) -> io::Result<Identity> {
    let m = std::fs::metadata(path)?;
    Ok(hash(&(
        m.len(),
        m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    )))
}

/// The name, length and modification time of every entry of a directory (following symlinks),
/// in name order: a file added, removed, replaced or rewritten changes it.
pub fn dir_identity(dir: &Path) -> io::Result<Identity> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| {
            let m = std::fs::metadata(e.path()).ok();
            (
                e.file_name(),
                m.as_ref().map(|m| m.len()),
                m.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    entries.sort();
    Ok(hash(&entries))
}

fn hash(v: &impl Hash) -> Identity {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Duration;

    #[test]
    fn remembers_until_the_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, "{}").unwrap();
        let memo: Memo<u32> = Memo::default();
        let reads = Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            reads.get()
        };
        let id = dir_identity(dir.path()).unwrap();
        assert_eq!(memo.get_or(dir.path(), id, read), 1);
        assert_eq!(memo.get_or(dir.path(), id, read), 1);
        // Same length, later modification time: read again.
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        let id2 = dir_identity(dir.path()).unwrap();
        assert_ne!(id, id2);
        assert_eq!(memo.get_or(dir.path(), id2, read), 2);
        // A file added: read again.
        std::fs::write(dir.path().join("chat_template.jinja"), "x").unwrap();
        let id3 = dir_identity(dir.path()).unwrap();
        assert_eq!(memo.get_or(dir.path(), id3, read), 3);
        assert_eq!(file_identity(&file).unwrap(), file_identity(&file).unwrap());
    }

    #[test]
    fn failures_are_not_remembered() {
        let memo: Memo<u32> = Memo::default();
        let p = Path::new("/nowhere");
        assert!(memo.get_or_try(p, 1, || Err::<u32, ()>(())).is_err());
        assert_eq!(memo.get_or_try(p, 1, || Ok::<u32, ()>(7)), Ok(7));
    }
}
