//! Verify-on-write, the one way a content-addressed file (an Ollama blob, a Hugging Face cache
//! blob) reaches its final name: the bytes go to a temporary file beside it and are hashed as
//! they are written, and the file is renamed into place only when its SHA-256 is the one
//! expected. A reader of the final name never sees a partial or corrupt file.
//!
//! [`BlobWriter`] is the synchronous core; [`BlobSink`] runs one on a blocking thread fed through
//! a channel, for async producers (a download, an upload), so the network side never waits on
//! the disk or the hash (tokio's async file I/O hops threads on every write).

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A temporary file being written and hashed.
pub struct BlobWriter {
    temp: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    len: u64,
}

impl BlobWriter {
    /// Starts `temp` afresh, truncating anything there.
    pub fn create(temp: &Path) -> io::Result<BlobWriter> {
        Ok(BlobWriter::new(temp, File::create(temp)?, Sha256::new(), 0))
    }

    /// Continues `temp` (a resumed download): the bytes already there are hashed first, so the
    /// finished file is verified whole.
    pub fn resume(temp: &Path) -> io::Result<BlobWriter> {
        let mut hasher = Sha256::new();
        let mut f = File::open(temp)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        let file = fs::OpenOptions::new().append(true).open(temp)?;
        Ok(BlobWriter::new(temp, file, hasher, len))
    }

    fn new(temp: &Path, file: File, hasher: Sha256, len: u64) -> BlobWriter {
        BlobWriter {
            temp: temp.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
            hasher,
            len,
        }
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Flushes and syncs the file, which stays at its temporary name until [`Written::commit`].
    pub fn finish(self) -> io::Result<Written> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(Written {
            temp: self.temp,
            sha256: hex::encode(self.hasher.finalize()),
            len: self.len,
        })
    }
}

/// A complete temporary file and what it hashed to.
#[derive(Debug)]
pub struct Written {
    pub temp: PathBuf,
    /// The SHA-256 of the whole file, lower-case hex.
    pub sha256: String,
    /// Its length in bytes (the resumed prefix included).
    pub len: u64,
}

/// Why a finished file was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The content is not what was expected; the temporary file was deleted.
    #[error("sha256 mismatch: expected {want}, got {got}")]
    Mismatch { want: String, got: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Written {
    /// Renames the file to `dest` if its SHA-256 is `want` (hex, either case; `None` when the
    /// source publishes none, and then any content is accepted). A mismatch deletes the file.
    pub fn commit(self, dest: &Path, want: Option<&str>) -> Result<(), CommitError> {
        if let Some(want) = want {
            if !self.sha256.eq_ignore_ascii_case(want) {
                let _ = fs::remove_file(&self.temp);
                return Err(CommitError::Mismatch {
                    want: want.to_owned(),
                    got: self.sha256,
                });
            }
        }
        fs::rename(&self.temp, dest)?;
        Ok(())
    }
}

/// A [`BlobWriter`] on a blocking thread, fed chunks through a bounded channel.
pub struct BlobSink {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    task: tokio::task::JoinHandle<io::Result<Written>>,
}

impl BlobSink {
    /// Starts writing `temp`, afresh or (`resume`) after the bytes already there.
    pub fn spawn(temp: PathBuf, resume: bool) -> BlobSink {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let task = tokio::task::spawn_blocking(move || {
            let mut w = if resume {
                BlobWriter::resume(&temp)?
            } else {
                BlobWriter::create(&temp)?
            };
            while let Some(chunk) = rx.blocking_recv() {
                w.write(&chunk)?;
            }
            w.finish()
        });
        BlobSink { tx, task }
    }

    /// Queues a chunk. `false` means the writer has failed: stop sending, and [`BlobSink::finish`]
    /// reports why.
    pub async fn send(&self, chunk: bytes::Bytes) -> bool {
        self.tx.send(chunk).await.is_ok()
    }

    /// Ends the input and waits until the file is written and synced (or the writer failed).
    pub async fn finish(self) -> io::Result<Written> {
        drop(self.tx);
        self.task.await.map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_file_is_renamed_and_a_corrupt_one_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, dest) = (dir.path().join("t"), dir.path().join("d"));
        let sha = hex::encode(Sha256::digest(b"hello world"));

        let mut w = BlobWriter::create(&temp).unwrap();
        w.write(b"hello ").unwrap();
        w.finish().unwrap();
        // Resuming hashes what is already there.
        let mut w = BlobWriter::resume(&temp).unwrap();
        w.write(b"world").unwrap();
        let written = w.finish().unwrap();
        assert_eq!((written.sha256.as_str(), written.len), (sha.as_str(), 11));
        written.commit(&dest, Some(&sha.to_uppercase())).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello world");
        assert!(!temp.exists());

        let mut w = BlobWriter::create(&temp).unwrap();
        w.write(b"other").unwrap();
        let err = w.finish().unwrap().commit(&dest, Some(&sha)).unwrap_err();
        assert!(matches!(err, CommitError::Mismatch { .. }), "{err}");
        assert!(!temp.exists(), "a corrupt file is not kept");
        assert_eq!(fs::read(&dest).unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn the_sink_writes_what_it_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("t");
        let sink = BlobSink::spawn(temp.clone(), false);
        assert!(sink.send(bytes::Bytes::from_static(b"ab")).await);
        assert!(sink.send(bytes::Bytes::from_static(b"c")).await);
        let written = sink.finish().await.unwrap();
        assert_eq!(written.sha256, hex::encode(Sha256::digest(b"abc")));
        written.commit(&dir.path().join("d"), None).unwrap();
        assert_eq!(fs::read(dir.path().join("d")).unwrap(), b"abc");
    }
}
