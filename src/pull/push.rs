//! Pushing a model from Ollama's store to an Ollama-protocol registry (Docker registry v2), as
//! Ollama's `PushModel` does: every blob the manifest names (the layers, then the config) is
//! checked with `HEAD` and uploaded only when the registry lacks it (`POST …/blobs/uploads/`,
//! `PATCH` in parts, `PUT ?digest=`), then the manifest is put. A push that fails part-way is
//! resumed by pushing again: blobs already there are skipped. The manifest goes up as the
//! bytes in the store, so the model has the same digest (ID) on the registry as here.

use super::auth::Tokens;
use super::{PullError, Puller};
use crate::api::ProgressResponse;
use crate::store::manifest::{Layer, Manifest, MANIFEST_MEDIA_TYPE};
use crate::store::name::ModelName;
use crate::store::ollama::BlobDigest;
use futures_util::StreamExt;
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes sent per `PATCH` (Ollama sends parts of 100 MB to 1 GB).
const PART: u64 = 64 << 20;
/// Tries of one blob's upload before the push fails.
const TRIES: u32 = 3;

pub async fn push(
    p: &Puller,
    name: &ModelName,
    insecure: bool,
    progress: super::Progress<'_>,
) -> Result<(), PullError> {
    if !progress(ProgressResponse::status("retrieving manifest")) {
        return Err(PullError::Cancelled);
    }
    let (raw, manifest) = local_manifest(p, name)?;
    let push = Push {
        p,
        base: base_url(name, insecure)?,
        scope: format!("repository:{}/{}:push,pull", name.namespace, name.model),
        tokens: Tokens::default(),
    };
    for layer in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        push.blob(layer, progress).await?;
    }
    if !progress(ProgressResponse::status("pushing manifest")) {
        return Err(PullError::Cancelled);
    }
    push.manifest(&name.tag, raw).await?;
    progress(ProgressResponse::status("success"));
    Ok(())
}

/// The stored manifest's bytes and their parse.
fn local_manifest(p: &Puller, name: &ModelName) -> Result<(Vec<u8>, Manifest), PullError> {
    let (_, path) = p.ollama.find(name).ok_or_else(|| {
        PullError::NotFound(format!("model '{}' not found", name.display_shortest()))
    })?;
    let raw = std::fs::read(&path).map_err(|e| PullError::Io(e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&raw)
        .map_err(|e| PullError::Io(format!("the model's manifest is invalid: {e}")))?;
    Ok((raw, manifest))
}

/// `http(s)://host/v2/namespace/model/`. Plain http only with `insecure`.
fn base_url(name: &ModelName, insecure: bool) -> Result<Url, PullError> {
    let scheme = if insecure { "http" } else { "https" };
    Url::parse(&format!(
        "{scheme}://{}/v2/{}/{}/",
        name.host, name.namespace, name.model
    ))
    .map_err(|_| PullError::InvalidName)
}

struct Push<'a> {
    p: &'a Puller,
    base: Url,
    scope: String,
    tokens: Tokens,
}

impl Push<'_> {
    async fn send(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, PullError> {
        let resp = self
            .tokens
            .send(&self.p.http, make, &self.scope)
            .await
            .map_err(|e| PullError::Network(format!("{what}: {e}")))?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(PullError::Auth(format!(
                "{what}: the registry refused access ({}); pushing to ollama.com needs Ollama's own key authentication, which ollmlx does not implement",
                resp.status()
            )));
        }
        Ok(resp)
    }

    fn url(&self, rel: &str) -> Url {
        self.base.join(rel).expect("a relative path joins")
    }

    /// One blob: skipped when the registry has it, else uploaded (tried again from the start
    /// when an upload fails part-way).
    async fn blob(&self, layer: &Layer, progress: super::Progress<'_>) -> Result<(), PullError> {
        let digest = BlobDigest::parse(&layer.digest)
            .map_err(|_| PullError::Io(format!("invalid digest {:?}", layer.digest)))?;
        let report = |done: u64| blob_progress(&layer.digest, layer.size, done);
        let head = self
            .send(
                || {
                    self.p
                        .http
                        .head(self.url(&format!("blobs/{}", layer.digest)))
                },
                "checking a blob",
            )
            .await?;
        if head.status().is_success() {
            progress(report(layer.size));
            return Ok(());
        }
        if head.status() != StatusCode::NOT_FOUND {
            return Err(PullError::Status {
                status: head.status().as_u16(),
                what: format!("checking blob {}", layer.digest),
            });
        }
        let path = self.p.ollama.blob_path(&digest);
        let mut last = Err(PullError::Io("no upload was tried".into()));
        for attempt in 1..=TRIES {
            last = self.upload(layer, &path, progress).await;
            match &last {
                Ok(()) | Err(PullError::Cancelled) | Err(PullError::Auth(_)) => return last,
                Err(e) if attempt < TRIES => {
                    tracing::warn!(digest = %layer.digest, attempt, error = %e, "blob upload failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
                }
                Err(_) => {}
            }
        }
        last
    }

    async fn upload(
        &self,
        layer: &Layer,
        path: &std::path::Path,
        progress: super::Progress<'_>,
    ) -> Result<(), PullError> {
        let start = self
            .send(
                || {
                    self.p
                        .http
                        .post(self.url("blobs/uploads/"))
                        .header(reqwest::header::CONTENT_LENGTH, 0)
                },
                "starting an upload",
            )
            .await?;
        if start.status() == StatusCode::CREATED {
            progress(blob_progress(&layer.digest, layer.size, layer.size));
            return Ok(());
        }
        let mut location = self.next_location(&start, "starting an upload")?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| PullError::Io(format!("{}: {e}", path.display())))?;
        let mut offset = 0u64;
        while offset < layer.size {
            let len = PART.min(layer.size - offset);
            let mut chunk = vec![0u8; len as usize];
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| PullError::Io(e.to_string()))?;
            file.read_exact(&mut chunk)
                .await
                .map_err(|e| PullError::Io(e.to_string()))?;
            let chunk = bytes::Bytes::from(chunk);
            let range = format!("{}-{}", offset, offset + len - 1);
            let url = location.clone();
            let resp = self
                .send(
                    || {
                        self.p
                            .http
                            .patch(url.clone())
                            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                            .header(reqwest::header::CONTENT_RANGE, range.clone())
                            .body(chunk.clone())
                    },
                    "uploading a blob",
                )
                .await?;
            if !resp.status().is_success() {
                return Err(PullError::Status {
                    status: resp.status().as_u16(),
                    what: format!("uploading blob {}", layer.digest),
                });
            }
            location = self.next_location(&resp, "uploading a blob")?;
            offset += len;
            if !progress(blob_progress(&layer.digest, layer.size, offset)) {
                return Err(PullError::Cancelled);
            }
        }
        let mut done = location;
        done.query_pairs_mut().append_pair("digest", &layer.digest);
        let resp = self
            .send(
                || {
                    self.p
                        .http
                        .put(done.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .header(reqwest::header::CONTENT_LENGTH, 0)
                },
                "finishing an upload",
            )
            .await?;
        if !resp.status().is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(PullError::Network(format!(
                "finishing the upload of {}: {}",
                layer.digest,
                body.chars().take(200).collect::<String>()
            )));
        }
        Ok(())
    }

    /// Where the upload goes on (`Docker-Upload-Location`, else `Location`; may be relative).
    fn next_location(&self, resp: &reqwest::Response, what: &str) -> Result<Url, PullError> {
        let h = resp.headers();
        let loc = h
            .get("docker-upload-location")
            .or_else(|| h.get(reqwest::header::LOCATION))
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                PullError::Network(format!(
                    "{what}: the registry answered {} without a Location",
                    resp.status()
                ))
            })?;
        self.base
            .join(loc)
            .map_err(|e| PullError::Network(format!("{what}: bad Location {loc:?}: {e}")))
    }

    async fn manifest(&self, tag: &str, raw: Vec<u8>) -> Result<(), PullError> {
        let body = bytes::Bytes::from(raw);
        let resp = self
            .send(
                || {
                    self.p
                        .http
                        .put(self.url(&format!("manifests/{tag}")))
                        .header(reqwest::header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
                        .body(body.clone())
                },
                "pushing the manifest",
            )
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status().as_u16();
        let mut text = String::new();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(b)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&b));
            if text.len() > 500 {
                break;
            }
        }
        Err(PullError::Network(format!(
            "pushing the manifest: the registry answered {status}: {}",
            text.chars().take(200).collect::<String>()
        )))
    }
}

/// `pushing <first 12 hex>` with the digest and byte counts, as Ollama reports a blob.
fn blob_progress(digest: &str, total: u64, completed: u64) -> ProgressResponse {
    let hex = digest.trim_start_matches("sha256:");
    ProgressResponse {
        status: format!("pushing {}", &hex[..hex.len().min(12)]),
        digest: digest.to_owned(),
        total,
        completed,
    }
}
