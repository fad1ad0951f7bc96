//! Pulling a GGUF model from an Ollama registry (Docker v2-style manifests and blobs) into
//! Ollama's store: every blob is downloaded (resumably) and verified against its digest, and the
//! manifest is written last.

use super::download::Fetch;
use super::{blob_progress, Progress, PullError, Puller};
use crate::api::ProgressResponse;
use crate::store::manifest::{Manifest, MANIFEST_MEDIA_TYPE, MEDIA_MODEL};
use crate::store::name::ModelName;
use crate::store::ollama::BlobDigest;

/// Pulls `name`: fetch the manifest, download and verify every blob it names, check the model
/// file is a GGUF, then write the manifest (which makes the model visible).
pub async fn pull(
    p: &Puller,
    name: &ModelName,
    insecure: bool,
    progress: Progress<'_>,
) -> Result<(), PullError> {
    if !progress(ProgressResponse::status("pulling manifest")) {
        return Err(PullError::Cancelled);
    }
    let scheme = if insecure { "http" } else { "https" };
    let base = format!(
        "{scheme}://{}/v2/{}/{}",
        name.host, name.namespace, name.model
    );
    let (raw, manifest) = fetch_manifest(p, &base, name).await?;
    download_blobs(p, &base, &manifest, progress).await?;
    if !progress(ProgressResponse::status("verifying sha256 digest")) {
        return Err(PullError::Cancelled);
    }
    if let Err(e) = check_model_file(p, &manifest).await {
        p.ollama.remove_unreferenced(manifest.digests());
        return Err(e);
    }
    if !progress(ProgressResponse::status("writing manifest")) {
        return Err(PullError::Cancelled);
    }
    p.ollama
        .write_manifest_bytes(name, &raw)
        .map_err(|e| PullError::Io(e.to_string()))?;
    progress(ProgressResponse::status("success"));
    Ok(())
}

/// The manifest, as the registry's bytes and parsed. The bytes are kept and written as they
/// are, as Ollama does, so the model gets the ID it has in `ollama list`.
async fn fetch_manifest(
    p: &Puller,
    base: &str,
    name: &ModelName,
) -> Result<(bytes::Bytes, Manifest), PullError> {
    let resp = p
        .http
        .get(format!("{base}/manifests/{}", name.tag))
        .header(reqwest::header::ACCEPT, MANIFEST_MEDIA_TYPE)
        .send()
        .await
        .map_err(|e| PullError::Network(format!("pull model manifest: {e}")))?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(PullError::NotFound(
                "pull model manifest: file does not exist".into(),
            ))
        }
        401 | 403 => {
            return Err(PullError::Auth(format!(
                "pull model manifest: the registry refused access to {name} ({})",
                resp.status()
            )))
        }
        s => {
            return Err(PullError::Status {
                status: s,
                what: "pull model manifest".into(),
            })
        }
    }
    let raw = resp
        .bytes()
        .await
        .map_err(|e| PullError::Network(format!("pull model manifest: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| {
        PullError::Network(format!("pull model manifest: not a valid manifest: {e}"))
    })?;
    Ok((raw, manifest))
}

/// Every blob the manifest names (config first), each verified against its digest.
async fn download_blobs(
    p: &Puller,
    base: &str,
    manifest: &Manifest,
    progress: Progress<'_>,
) -> Result<(), PullError> {
    let blobs: Vec<(BlobDigest, u64)> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .map(|l| {
            BlobDigest::parse(&l.digest)
                .map(|d| (d, l.size))
                .map_err(|_| {
                    PullError::Io(format!("invalid digest {:?} in the manifest", l.digest))
                })
        })
        .collect::<Result<_, _>>()?;
    for (digest, size) in &blobs {
        let hex = digest.as_str().trim_start_matches("sha256:").to_owned();
        let dest = p.ollama.blob_path(digest);
        let fetch = Fetch {
            client: &p.http,
            url: format!("{base}/blobs/{}", digest.as_str()),
            token: None,
            partial: dest.with_file_name(format!("{}-partial", digest.file_name())),
            dest,
            sha256: Some(hex.clone()),
            size: Some(*size),
            label: digest.as_str().to_owned(),
        };
        let mut last_pct = u64::MAX;
        fetch
            .run(|done| {
                let pct = (done * 100).checked_div(*size).unwrap_or(100);
                if pct == last_pct {
                    return true;
                }
                last_pct = pct;
                progress(blob_progress(digest.as_str(), *size, done))
            })
            .await?;
    }
    Ok(())
}

/// The model layer must be a GGUF whose header reads: a malformed one is refused here, before a
/// manifest makes it visible to every later `/api/tags` and load.
async fn check_model_file(p: &Puller, manifest: &Manifest) -> Result<(), PullError> {
    let Some(layer) = manifest.layer(MEDIA_MODEL) else {
        return Ok(());
    };
    let digest = BlobDigest::parse(&layer.digest)
        .map_err(|_| PullError::Io(format!("invalid digest {:?}", layer.digest)))?;
    let path = p.ollama.blob_path(&digest);
    tokio::task::spawn_blocking(move || crate::store::gguf::read(&path, false))
        .await
        .map_err(|e| PullError::Io(e.to_string()))?
        .map(|_| ())
        .map_err(|e| PullError::NotServable(format!("the model file is not a valid GGUF: {e}")))
}
