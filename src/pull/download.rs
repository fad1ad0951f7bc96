//! One file, downloaded resumably and verified: bytes go to a partial file next to the
//! destination; a later attempt continues it with an HTTP `Range` request; the finished file is
//! checked against its published size and SHA-256 and only then renamed into place. A corrupt
//! download is deleted, never kept.

use super::PullError;
use crate::store::blob_writer::{BlobSink, CommitError};
use futures_util::StreamExt;
use std::path::PathBuf;

pub struct Fetch<'a> {
    pub client: &'a reqwest::Client,
    pub url: String,
    /// A bearer token, sent to the first host only (reqwest drops it on a cross-host redirect).
    pub token: Option<&'a str>,
    pub dest: PathBuf,
    pub partial: PathBuf,
    /// The SHA-256 (hex) the source publishes, when it does.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// A name for messages.
    pub label: String,
}

impl Fetch<'_> {
    /// Downloads (or finishes downloading) the file, reporting bytes done through `progress`.
    /// `progress` returning false stops the download (the client went away): the partial file
    /// stays for the next attempt.
    pub async fn run(&self, mut progress: impl FnMut(u64) -> bool) -> Result<u64, PullError> {
        if let Ok(m) = tokio::fs::metadata(&self.dest).await {
            progress(m.len());
            return Ok(0);
        }
        let mut have = match tokio::fs::metadata(&self.partial).await {
            Ok(m) => m.len(),
            Err(_) => 0,
        };
        if have > 0 && self.size.is_some_and(|s| have > s) {
            let _ = tokio::fs::remove_file(&self.partial).await;
            have = 0;
        }
        let mut req = self.client.get(&self.url);
        if let Some(t) = self.token {
            req = req.bearer_auth(t);
        }
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| PullError::Network(format!("{}: {e}", self.label)))?;
        let status = resp.status();
        if !(status.is_success()) {
            return Err(PullError::Status {
                status: status.as_u16(),
                what: self.label.clone(),
            });
        }
        let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0;
        if !resumed {
            have = 0;
            if let Some(parent) = self.partial.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io)?;
            }
        }
        let sink = BlobSink::spawn(self.partial.clone(), resumed);
        let mut done = have;
        let mut fetched = 0u64;
        let mut body = resp.bytes_stream();
        let mut outcome = Ok(());
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    outcome = Err(PullError::Network(format!("{}: {e}", self.label)));
                    break;
                }
            };
            done += chunk.len() as u64;
            fetched += chunk.len() as u64;
            if self.size.is_some_and(|size| done > size) {
                // A server sending more than the manifest declared is wrong whatever follows:
                // stop reading now instead of taking all it sends (the check below fails it).
                break;
            }
            if !sink.send(chunk).await {
                break; // the sink failed: its error is reported below
            }
            if !progress(done) {
                outcome = Err(PullError::Cancelled);
                break;
            }
        }
        let written = match sink.finish().await {
            Ok(w) => w,
            Err(e) if disk_full(&e) => {
                // Kept for a resume, it would leave the disk full: nothing else could be written.
                let _ = tokio::fs::remove_file(&self.partial).await;
                return Err(PullError::Io(format!(
                    "{}: no space left on the disk ({e}); the partial download was removed",
                    self.label
                )));
            }
            Err(e) => return Err(io(e)),
        };
        outcome?;
        if let Some(size) = self.size.filter(|s| *s != done) {
            if done > size {
                let _ = tokio::fs::remove_file(&self.partial).await;
            }
            return Err(PullError::Network(format!(
                "{}: got {done} of {size} bytes",
                self.label
            )));
        }
        let dest = self.dest.clone();
        let want = self.sha256.clone();
        let committed = tokio::task::spawn_blocking(move || written.commit(&dest, want.as_deref()))
            .await
            .map_err(|e| PullError::Io(e.to_string()))?;
        match committed {
            Ok(()) => {}
            Err(CommitError::Mismatch { want, got }) => {
                return Err(PullError::Corrupt {
                    what: self.label.clone(),
                    want,
                    got,
                })
            }
            Err(CommitError::Io(e)) => return Err(io(e)),
        }
        Ok(fetched)
    }
}

/// Out of space or over quota.
fn disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

fn io(e: std::io::Error) -> PullError {
    PullError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A server that declares nothing and sends up to 256 MiB: the download must stop soon after
    /// the 100 bytes the manifest declared (it read the whole 256 MiB before).
    #[tokio::test]
    async fn a_source_sending_more_than_declared_is_cut_off_at_the_declared_size() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
            let chunk = vec![7u8; 64 << 10];
            for _ in 0..4096 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
                counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let fetch = Fetch {
            client: &client,
            url: format!("http://127.0.0.1:{port}/blob"),
            token: None,
            dest: dir.path().join("blob"),
            partial: dir.path().join("blob.partial"),
            sha256: None,
            size: Some(100),
            label: "blob".into(),
        };
        let err = fetch.run(|_| true).await.unwrap_err().to_string();
        assert!(err.contains("of 100 bytes"), "{err}");
        assert!(!fetch.partial.exists(), "an oversized partial is not kept");
        assert!(!fetch.dest.exists());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let served = sent.load(Ordering::SeqCst);
        assert!(served < 64 << 20, "read {served} bytes of a 100-byte blob");
    }

    /// A disk that fills up mid-download (the partial is a link to /dev/full, whose writes fail
    /// with ENOSPC): the partial is removed rather than kept for a resume.
    #[tokio::test]
    async fn a_full_disk_drops_the_partial() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let body = vec![7u8; 4 << 20];
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        });
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("blob.partial");
        std::os::unix::fs::symlink("/dev/full", &partial).unwrap();
        let client = reqwest::Client::new();
        let fetch = Fetch {
            client: &client,
            url: format!("http://127.0.0.1:{port}/blob"),
            token: None,
            dest: dir.path().join("blob"),
            partial: partial.clone(),
            sha256: None,
            size: Some(4 << 20),
            label: "blob".into(),
        };
        let err = fetch.run(|_| true).await.unwrap_err().to_string();
        assert!(err.contains("no space left"), "{err}");
        assert!(partial.symlink_metadata().is_err(), "the partial is gone");
        assert!(!fetch.dest.exists());
        assert!(std::path::Path::new("/dev/full").exists());
    }
}
