//! Pulling an MLX model from the Hugging Face hub (`HF_ENDPOINT`) into the hub cache, in the
//! layout `huggingface_hub` and `mlx_lm` share: `blobs/<sha256 or etag>`, `snapshots/<commit>/`
//! of relative symlinks, and `refs/<revision>` written last, so the model is listed only once
//! every file is complete.

use super::download::Fetch;
use super::{blob_progress, Progress, PullError, Puller};
use crate::api::ProgressResponse;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One file of the repo at the commit being pulled.
#[derive(Debug, Clone)]
struct RepoFile {
    path: String,
    size: u64,
    /// The LFS sha256, for large files: it is also the blob's name and what the bytes are checked
    /// against.
    sha256: Option<String>,
    /// The git blob id: the blob's name for small files.
    oid: String,
}

/// What serving needs; weights in other formats (`.bin`, `.pth`, ONNX, GGUF) are not fetched.
fn wanted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.contains('/') {
        return false; // sub-folders hold other formats (onnx/, original/, ...)
    }
    matches!(
        name,
        "config.json"
            | "generation_config.json"
            | "tokenizer.json"
            | "tokenizer_config.json"
            | "special_tokens_map.json"
            | "added_tokens.json"
            | "tokenizer.model"
            | "vocab.json"
            | "merges.txt"
            | "chat_template.jinja"
            | "chat_template.json"
            | "model.safetensors.index.json"
            | "README.md"
    ) || name.starts_with("LICENSE")
        || name.ends_with(".tiktoken")
        || (name.starts_with("model") && name.ends_with(".safetensors"))
}

/// Pulls `repo_id` at `revision`: resolve the commit, list the files serving needs, check the
/// model is one MLX can load (before anything is written), download each file, then build the
/// snapshot and write the ref that makes it visible.
pub async fn pull(
    p: &Puller,
    repo_id: &str,
    revision: &str,
    progress: Progress<'_>,
) -> Result<(), PullError> {
    if !progress(ProgressResponse::status("pulling manifest")) {
        return Err(PullError::Cancelled);
    }
    let commit = resolve_commit(p, repo_id, revision).await?;
    let files = repo_files(p, repo_id, &commit).await?;
    check_servable(p, repo_id, &commit, &files).await?;

    let repo_dir = p
        .hf_cache
        .join(format!("models--{}", repo_id.replace('/', "--")));
    download(p, repo_id, &commit, &repo_dir, &files, progress).await?;
    if !progress(ProgressResponse::status("verifying sha256 digest")) {
        return Err(PullError::Cancelled);
    }
    write_snapshot(&repo_dir, &commit, &files).await?;
    if !progress(ProgressResponse::status("writing manifest")) {
        return Err(PullError::Cancelled);
    }
    let refs = repo_dir.join("refs");
    tokio::fs::create_dir_all(&refs).await.map_err(io)?;
    crate::store::ollama::write_atomic(&refs.join(revision), commit.as_bytes()).map_err(io)?;
    progress(ProgressResponse::status("success"));
    Ok(())
}

/// The commit `revision` names now.
async fn resolve_commit(p: &Puller, repo_id: &str, revision: &str) -> Result<String, PullError> {
    let info: Value = get_json(
        p,
        &format!("{}/api/models/{repo_id}/revision/{revision}", p.hf_endpoint),
        repo_id,
    )
    .await?;
    let commit = info["sha"]
        .as_str()
        .filter(|s| s.chars().all(|c| c.is_ascii_alphanumeric()) && !s.is_empty())
        .ok_or_else(|| {
            PullError::NotFound(format!("{repo_id}@{revision}: the hub gave no commit"))
        })?;
    Ok(commit.to_owned())
}

/// The files of the commit that serving needs ([`wanted`]), with safe paths only.
async fn repo_files(p: &Puller, repo_id: &str, commit: &str) -> Result<Vec<RepoFile>, PullError> {
    let tree = list_tree(p, repo_id, commit).await?;
    Ok(tree
        .iter()
        .filter(|f| f["type"] == "file")
        .filter_map(|f| {
            Some(RepoFile {
                path: f["path"].as_str()?.to_owned(),
                size: f["lfs"]["size"]
                    .as_u64()
                    .or_else(|| f["size"].as_u64())
                    .unwrap_or(0),
                sha256: f["lfs"]["oid"].as_str().map(str::to_owned),
                oid: f["oid"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .filter(|f| wanted(&f.path) && safe_path(&f.path))
        .collect())
}

/// A model MLX can load: safetensors weights and a `config.json` (fetched and read) that names
/// its `model_type`.
async fn check_servable(
    p: &Puller,
    repo_id: &str,
    commit: &str,
    files: &[RepoFile],
) -> Result<(), PullError> {
    let config = files
        .iter()
        .find(|f| f.path == "config.json")
        .ok_or_else(|| {
            PullError::NotServable(format!(
                "{repo_id} has no config.json: it is not a model MLX can load"
            ))
        })?;
    if !files.iter().any(|f| f.path.ends_with(".safetensors")) {
        return Err(PullError::NotServable(format!(
            "{repo_id} has no safetensors weights (MLX cannot load .bin, GGUF or ONNX weights); look for an mlx-community conversion"
        )));
    }
    let cfg_bytes = fetch_small(p, repo_id, commit, &config.path).await?;
    let cfg: Value = serde_json::from_slice(&cfg_bytes).map_err(|e| {
        PullError::NotServable(format!("{repo_id}: config.json is not valid JSON: {e}"))
    })?;
    if cfg.get("model_type").and_then(Value::as_str).is_none() {
        return Err(PullError::NotServable(format!(
            "{repo_id}: config.json has no model_type"
        )));
    }
    Ok(())
}

/// Each file into `blobs/` under its blob name (the LFS sha256, else the git blob id),
/// resumably and verified where the hub publishes a sha256.
async fn download(
    p: &Puller,
    repo_id: &str,
    commit: &str,
    repo_dir: &Path,
    files: &[RepoFile],
    progress: Progress<'_>,
) -> Result<(), PullError> {
    let blobs = repo_dir.join("blobs");
    tokio::fs::create_dir_all(&blobs).await.map_err(io)?;
    for f in files {
        let blob = blob_name(f)?;
        let display = f
            .sha256
            .as_ref()
            .map_or_else(|| blob.clone(), |h| format!("sha256:{h}"));
        let fetch = Fetch {
            client: &p.http,
            url: format!("{}/{repo_id}/resolve/{commit}/{}", p.hf_endpoint, f.path),
            token: p.hf_token.as_deref(),
            dest: blobs.join(&blob),
            partial: blobs.join(format!("{blob}.incomplete")),
            sha256: f.sha256.clone(),
            size: Some(f.size),
            label: f.path.clone(),
        };
        let total = f.size;
        let mut last_pct = u64::MAX;
        fetch
            .run(|done| {
                // Report whole-percent steps: enough for progress bars, not a flood of lines.
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                if pct == last_pct {
                    return true;
                }
                last_pct = pct;
                progress(blob_progress(&display, total, done))
            })
            .await?;
    }
    Ok(())
}

/// The name of a file's blob: its LFS sha256, else its git blob id; hex either way, since it
/// becomes a path.
fn blob_name(f: &RepoFile) -> Result<String, PullError> {
    let blob = f.sha256.clone().unwrap_or_else(|| f.oid.clone());
    if blob.is_empty() || !blob.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PullError::Io(format!(
            "{}: the hub gave no usable id",
            f.path
        )));
    }
    Ok(blob)
}

/// The snapshot of symlinks into `blobs/`: built aside and renamed into place, so it appears
/// whole.
async fn write_snapshot(
    repo_dir: &Path,
    commit: &str,
    files: &[RepoFile],
) -> Result<(), PullError> {
    let snapshot = repo_dir.join("snapshots").join(commit);
    if snapshot.is_dir() {
        return Ok(());
    }
    let staging = repo_dir
        .join("snapshots")
        .join(format!(".{commit}.partial-{}", std::process::id()));
    let _ = tokio::fs::remove_dir_all(&staging).await;
    tokio::fs::create_dir_all(&staging).await.map_err(io)?;
    for f in files {
        let blob = f.sha256.clone().unwrap_or_else(|| f.oid.clone());
        link(&staging, &f.path, &blob)?;
    }
    tokio::fs::rename(&staging, &snapshot).await.map_err(io)
}

/// A relative symlink `snapshot/<path>` -> `../../blobs/<blob>` (deeper for nested paths).
fn link(snapshot: &Path, path: &str, blob: &str) -> Result<(), PullError> {
    let dest = snapshot.join(path);
    let depth = path.matches('/').count();
    let mut target = PathBuf::from("../".repeat(2 + depth));
    target.push("blobs");
    target.push(blob);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::os::unix::fs::symlink(target, dest).map_err(io)
}

/// Repo paths come from the network: never let one climb out of the snapshot.
fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.split('/').any(|c| c == ".." || c.is_empty() || c == ".")
}

/// The recursive file list, following the hub's `Link: <...>; rel="next"` pages.
async fn list_tree(p: &Puller, repo_id: &str, commit: &str) -> Result<Vec<Value>, PullError> {
    let mut url = format!(
        "{}/api/models/{repo_id}/tree/{commit}?recursive=true",
        p.hf_endpoint
    );
    let mut all = Vec::new();
    for _ in 0..1000 {
        let resp = hub_get(p, &url, repo_id).await?;
        let next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let page: Value = resp
            .json()
            .await
            .map_err(|e| PullError::Network(format!("{url}: {e}")))?;
        all.extend(page.as_array().cloned().unwrap_or_default());
        match next {
            Some(n) => url = n,
            None => return Ok(all),
        }
    }
    Err(PullError::Network(format!(
        "{repo_id}: the file list never ends"
    )))
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

async fn get_json(p: &Puller, url: &str, repo_id: &str) -> Result<Value, PullError> {
    let resp = hub_get(p, url, repo_id).await?;
    resp.json()
        .await
        .map_err(|e| PullError::Network(format!("{url}: {e}")))
}

async fn fetch_small(
    p: &Puller,
    repo_id: &str,
    commit: &str,
    path: &str,
) -> Result<Vec<u8>, PullError> {
    let url = format!("{}/{repo_id}/resolve/{commit}/{path}", p.hf_endpoint);
    let resp = hub_get(p, &url, repo_id).await?;
    Ok(resp
        .bytes()
        .await
        .map_err(|e| PullError::Network(format!("{url}: {e}")))?
        .to_vec())
}

/// A GET to the hub with the token (reqwest drops it if the hub redirects to another host),
/// its error answers mapped.
async fn hub_get(p: &Puller, url: &str, repo_id: &str) -> Result<reqwest::Response, PullError> {
    let mut req = p.http.get(url);
    if let Some(t) = &p.hf_token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| PullError::Network(format!("{url}: {e}")))?;
    check(resp, repo_id, p.hf_token.is_some())
}

/// Maps the hub's error answers (`X-Error-Code`) to errors that say what to do.
fn check(
    resp: reqwest::Response,
    repo_id: &str,
    had_token: bool,
) -> Result<reqwest::Response, PullError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let code = resp
        .headers()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let login = "set HF_TOKEN or run `ollmlx login` with a token that has access";
    Err(match (status.as_u16(), code.as_str()) {
        (401 | 403, "GatedRepo") if had_token => PullError::Auth(format!(
            "{repo_id} is gated and your token has no access to it: accept its terms on huggingface.co, then pull again"
        )),
        (401 | 403, "GatedRepo") => PullError::Auth(format!("{repo_id} is gated: accept its terms on huggingface.co and {login}")),
        (401, _) if had_token => PullError::NotFound(format!("model '{repo_id}' not found on Hugging Face (or your token cannot see it)")),
        (401, _) => PullError::NotFound(format!("model '{repo_id}' not found on Hugging Face; if it is private, {login}")),
        (403, _) => PullError::Auth(format!("access to {repo_id} was refused; {login}")),
        (404, "RevisionNotFound") => PullError::NotFound(format!("{repo_id}: no such revision")),
        (404, _) => PullError::NotFound(format!("model '{repo_id}' not found on Hugging Face")),
        (s, _) => PullError::Status { status: s, what: repo_id.to_owned() },
    })
}

fn io(e: std::io::Error) -> PullError {
    PullError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_link_headers() {
        assert_eq!(
            next_link(r#"<https://hub/api/models/a/b/tree/c?cursor=x>; rel="next""#).as_deref(),
            Some("https://hub/api/models/a/b/tree/c?cursor=x")
        );
        assert_eq!(next_link(r#"<https://x>; rel="prev""#), None);
    }

    #[test]
    fn fetches_only_what_serving_needs() {
        for yes in [
            "config.json",
            "model.safetensors",
            "model-00001-of-00002.safetensors",
            "tokenizer.json",
            "chat_template.jinja",
            "LICENSE",
            "tokenizer.model",
        ] {
            assert!(wanted(yes), "{yes}");
        }
        for no in [
            "pytorch_model.bin",
            "model.gguf",
            "onnx/model.onnx",
            "original/consolidated.pth",
            "consolidated.safetensors",
            ".gitattributes",
        ] {
            assert!(!wanted(no), "{no}");
        }
        assert!(
            !safe_path("../x")
                && !safe_path("/etc/passwd")
                && !safe_path("a//b")
                && safe_path("a/b")
        );
    }
}
