//! The fake Hugging Face hub: revision info, the recursive tree (paged on request), `resolve`
//! for files (LFS files as a 302 to the CDN), and the hub's error answers.

use super::cdn::{cdn_handler, CdnEntry, CdnState};
use super::control::{Control, Listener};
use super::digest::{git_blob_sha1, sha1, sha256_hex};
use super::http::{hv, json_response, serve_bytes, About, Req};
use super::server::{bind, Server};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Files at least this large are LFS files whatever their name.
pub const LFS_MIN_SIZE: usize = 1024 * 1024;

/// A model repository on the fake hub.
#[derive(Debug, Clone, Default)]
pub struct HfRepo {
    /// `org/name`.
    pub id: String,
    /// The commit `main` points at: 40 hex digits. Empty: derived from the id and the files
    /// ([`HfRepo::commit_id`]).
    pub commit: String,
    /// `(path in the repo, bytes)`; paths use `/` and may have folders.
    pub files: Vec<(String, Vec<u8>)>,
    /// When set, the repo is gated: requests need `Authorization: Bearer <this>`.
    pub gated_token: Option<String>,
}

impl HfRepo {
    /// A public repo with an automatic commit.
    pub fn new(id: &str, files: Vec<(&str, Vec<u8>)>) -> HfRepo {
        HfRepo {
            id: id.to_owned(),
            files: files.into_iter().map(|(p, b)| (p.to_owned(), b)).collect(),
            ..HfRepo::default()
        }
    }

    /// The repo with the files of a snapshot folder (symlinks followed, sub-folders included),
    /// e.g. `target/fixtures/hub/models--ollmlx-test--tiny-llama/snapshots/<rev>/`. When the
    /// folder's name is a commit (40 hex digits), that is the repo's commit.
    pub fn from_dir(id: &str, dir: &Path) -> HfRepo {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
            let entries =
                std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            for entry in entries {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                let rel = format!("{prefix}{name}");
                // fs::metadata follows symlinks, as the snapshot's links into blobs/ need.
                let meta =
                    std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if meta.is_dir() {
                    walk(&path, &format!("{rel}/"), out);
                } else {
                    out.push((rel, std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, "", &mut files);
        files.sort();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let commit = if is_commit(&name) {
            name
        } else {
            String::new()
        };
        HfRepo {
            id: id.to_owned(),
            commit,
            files,
            gated_token: None,
        }
    }

    /// Makes the repo gated behind `token`.
    pub fn gated(mut self, token: &str) -> HfRepo {
        self.gated_token = Some(token.to_owned());
        self
    }

    /// The commit the hub reports: [`HfRepo::commit`], or one derived from the id and files.
    pub fn commit_id(&self) -> String {
        if !self.commit.is_empty() {
            return self.commit.clone();
        }
        let mut seed = format!("commit {}\0", self.id).into_bytes();
        for (path, bytes) in &self.files {
            seed.extend_from_slice(path.as_bytes());
            seed.push(0);
            seed.extend_from_slice(git_blob_sha1(bytes).as_bytes());
        }
        hex::encode(sha1(&seed))
    }

    /// The bytes of one file.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.as_slice())
    }
}

pub(super) fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the hub stores a file in LFS: weights by extension, anything of 1 MiB or more.
pub fn is_lfs(path: &str, size: usize) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(ext, "safetensors" | "bin" | "gguf") || size >= LFS_MIN_SIZE
}

/// The git-lfs pointer file the repo's git history holds for an LFS file.
fn lfs_pointer(sha256: &str, size: usize) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

struct HubFile {
    path: String,
    data: Bytes,
    sha256: String,
    /// The git blob id of the bytes (small files) or of the LFS pointer (LFS files).
    oid: String,
    lfs: bool,
    pointer_size: usize,
    about: About,
}

struct HubRepo {
    id: String,
    commit: String,
    gated_token: Option<String>,
    files: Vec<HubFile>,
}

struct HubState {
    url: String,
    cdn_url: String,
    repos: Vec<HubRepo>,
    ctl: Control,
    cdn: CdnState,
}

/// A fake Hugging Face hub: point `HF_ENDPOINT` at [`HfHub::url`]. Derefs to its [`Control`].
pub struct HfHub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The CDN's `http://127.0.0.1:PORT` (another port: another host, for redirects).
    pub cdn_url: String,
    control: Control,
    repos: Vec<HfRepo>,
    _server: Server,
}

impl std::ops::Deref for HfHub {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl HfHub {
    pub fn start(repos: Vec<HfRepo>) -> HfHub {
        let (main, addr) = bind();
        let (cdn, cdn_addr) = bind();
        let url = format!("http://{addr}");
        let cdn_url = format!("http://{cdn_addr}");
        let control = Control::default();
        let cdn_state = CdnState {
            ctl: control.clone(),
            sigs: Arc::default(),
        };
        let hub_repos = repos
            .iter()
            .map(|repo| HubRepo {
                id: repo.id.clone(),
                commit: repo.commit_id(),
                gated_token: repo.gated_token.clone(),
                files: repo
                    .files
                    .iter()
                    .map(|(path, bytes)| {
                        let sha256 = sha256_hex(bytes);
                        let lfs = is_lfs(path, bytes.len());
                        let pointer = lfs_pointer(&sha256, bytes.len());
                        let oid = if lfs {
                            git_blob_sha1(pointer.as_bytes())
                        } else {
                            git_blob_sha1(bytes)
                        };
                        HubFile {
                            path: path.clone(),
                            data: Bytes::from(bytes.clone()),
                            sha256,
                            oid,
                            lfs,
                            pointer_size: pointer.len(),
                            about: About {
                                file: format!("{}/{path}", repo.id),
                                names: vec![path.clone(), format!("{}/{path}", repo.id)],
                            },
                        }
                    })
                    .collect(),
            })
            .collect();
        let state = Arc::new(HubState {
            url: url.clone(),
            cdn_url: cdn_url.clone(),
            repos: hub_repos,
            ctl: control.clone(),
            cdn: cdn_state.clone(),
        });
        let app = Router::new().fallback(hub_handler).with_state(state);
        let cdn_app = Router::new().fallback(cdn_handler).with_state(cdn_state);
        HfHub {
            url,
            cdn_url,
            control,
            repos,
            _server: Server::start(main, app, cdn, cdn_app),
        }
    }

    /// A handle on this hub's log and faults, for another thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The commit a repo's `main` points at.
    pub fn commit(&self, id: &str) -> String {
        self.repo(id).commit_id()
    }

    /// A repo as served.
    pub fn repo(&self, id: &str) -> &HfRepo {
        self.repos
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no repo {id}"))
    }
}

async fn hub_handler(State(s): State<Arc<HubState>>, req: axum::extract::Request) -> Response {
    let r = Req::new(&req);
    let counter = Arc::new(AtomicU64::new(0));
    let (response, about) = match s.route(&r, &counter) {
        Ok(ok) => ok,
        Err(e) => (e, None),
    };
    s.ctl
        .record(Listener::Hub, &r, response.status(), about, counter);
    response
}

/// The hub's error answer: status, `X-Error-Code`, `X-Error-Message` and `{"error": message}`.
fn hf_error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(code) = code {
        headers.insert("x-error-code", hv(code));
    }
    headers.insert("x-error-message", hv(message));
    json_response(status, headers, &json!({ "error": message }))
}

impl HubState {
    fn route(
        &self,
        r: &Req,
        counter: &Arc<AtomicU64>,
    ) -> Result<(Response, Option<About>), Response> {
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        if !r.is_read() {
            return Err(StatusCode::METHOD_NOT_ALLOWED.into_response());
        }
        match segs.as_slice() {
            ["api", "models", org, name, "revision", rev @ ..] if !rev.is_empty() => {
                let repo = self.repo(r, org, name)?;
                let commit = self.revision(repo, &rev.join("/"))?;
                let gated: Value = if repo.gated_token.is_some() {
                    json!("manual")
                } else {
                    json!(false)
                };
                let body = json!({
                    "_id": &commit[..24],
                    "id": repo.id,
                    "modelId": repo.id,
                    "private": false,
                    "gated": gated,
                    "disabled": false,
                    "sha": commit,
                    "lastModified": "2025-01-01T00:00:00.000Z",
                    "siblings": repo.files.iter().map(|f| json!({"rfilename": f.path})).collect::<Vec<_>>(),
                });
                Ok((json_response(StatusCode::OK, HeaderMap::new(), &body), None))
            }
            ["api", "models", org, name, "tree", rev, under @ ..] => {
                let repo = self.repo(r, org, name)?;
                let commit = self.revision(repo, rev)?;
                let under = under.join("/");
                Ok((self.tree(r, repo, rev, &commit, &under), None))
            }
            [org, name, "resolve", rev, path @ ..] if !path.is_empty() => {
                let repo = self.repo(r, org, name)?;
                let commit = self.revision(repo, rev)?;
                let path = path.join("/");
                let Some(file) = repo.files.iter().find(|f| f.path == path) else {
                    let mut e = hf_error(
                        StatusCode::NOT_FOUND,
                        Some("EntryNotFound"),
                        "Entry not found",
                    );
                    e.headers_mut().insert("x-repo-commit", hv(&commit));
                    return Err(e);
                };
                if let Some(status) = self.ctl.failure(&file.about.names) {
                    let status = StatusCode::from_u16(status).unwrap();
                    let e = hf_error(status, None, "injected failure");
                    return Ok((e, Some(file.about.clone())));
                }
                Ok((
                    self.resolve(r, &commit, file, counter),
                    Some(file.about.clone()),
                ))
            }
            _ => Err(hf_error(StatusCode::NOT_FOUND, None, "Not Found")),
        }
    }

    /// The repo, if the request may see it.
    fn repo(&self, r: &Req, org: &str, name: &str) -> Result<&HubRepo, Response> {
        let id = format!("{org}/{name}");
        let auth = r.header(header::AUTHORIZATION);
        let Some(repo) = self.repos.iter().find(|repo| repo.id == id) else {
            // The hub does not say whether a repo exists: 401 to strangers, 404 to a logged-in
            // user, both RepoNotFound.
            let status = if auth.is_some() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::UNAUTHORIZED
            };
            let message = format!(
                "Repository Not Found for url: {}/api/models/{id}. Please make sure you specified \
                 the correct `repo_id` and `repo_type`. If you are trying to access a private or \
                 gated repo, make sure you are authenticated.",
                self.url
            );
            return Err(hf_error(status, Some("RepoNotFound"), &message));
        };
        if let Some(token) = &repo.gated_token {
            let message = format!(
                "Access to model {id} is restricted. You must have access to it and be \
                 authenticated to access it. Please log in."
            );
            match auth.and_then(|a| a.strip_prefix("Bearer ")) {
                None => {
                    return Err(hf_error(
                        StatusCode::UNAUTHORIZED,
                        Some("GatedRepo"),
                        &message,
                    ))
                }
                Some(t) if t != token => {
                    let message = format!(
                        "Access to model {id} is restricted and you are not in the authorized \
                         list. Visit https://huggingface.co/{id} to ask for access."
                    );
                    return Err(hf_error(StatusCode::FORBIDDEN, Some("GatedRepo"), &message));
                }
                Some(_) => {}
            }
        }
        Ok(repo)
    }

    /// The commit `rev` names: `main` or the commit itself.
    fn revision(&self, repo: &HubRepo, rev: &str) -> Result<String, Response> {
        if rev == "main" || rev == repo.commit {
            Ok(repo.commit.clone())
        } else {
            Err(hf_error(
                StatusCode::NOT_FOUND,
                Some("RevisionNotFound"),
                &format!("Invalid rev id: {rev}"),
            ))
        }
    }

    fn tree(&self, r: &Req, repo: &HubRepo, rev: &str, commit: &str, under: &str) -> Response {
        let recursive = r
            .query
            .get("recursive")
            .is_some_and(|v| v == "true" || v == "1");
        let prefix = if under.is_empty() {
            String::new()
        } else {
            format!("{under}/")
        };
        // Every folder on the way to a file, then the entries at the level asked for.
        let mut dirs = BTreeSet::new();
        for f in &repo.files {
            let mut at = 0;
            while let Some(i) = f.path[at..].find('/') {
                dirs.insert(f.path[..at + i].to_owned());
                at += i + 1;
            }
        }
        let wanted = |path: &str| -> bool {
            let Some(rest) = path.strip_prefix(&prefix) else {
                return false;
            };
            !rest.is_empty() && (recursive || !rest.contains('/'))
        };
        let mut entries: Vec<(String, Value)> = Vec::new();
        for d in dirs.iter().filter(|d| wanted(d)) {
            let oid = hex::encode(sha1(format!("tree {commit} {d}").as_bytes()));
            entries.push((
                d.clone(),
                json!({"type": "directory", "oid": oid, "size": 0, "path": d}),
            ));
        }
        for f in repo.files.iter().filter(|f| wanted(&f.path)) {
            let mut entry =
                json!({"type": "file", "oid": f.oid, "size": f.data.len(), "path": f.path});
            if f.lfs {
                entry["lfs"] =
                    json!({"oid": f.sha256, "size": f.data.len(), "pointerSize": f.pointer_size});
            }
            entries.push((f.path.clone(), entry));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();

        let mut headers = HeaderMap::new();
        let page = self.ctl.tree_page();
        if page > 0 {
            let start: usize = r
                .query
                .get("cursor")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let end = (start + page).min(entries.len());
            if end < entries.len() {
                let mut query = String::new();
                if recursive {
                    query.push_str("recursive=true&");
                }
                let path = if under.is_empty() {
                    String::new()
                } else {
                    format!("/{under}")
                };
                let next = format!(
                    "<{}/api/models/{}/tree/{rev}{path}?{query}cursor={end}>; rel=\"next\"",
                    self.url, repo.id
                );
                headers.insert(header::LINK, hv(&next));
            }
            entries = entries[start.min(entries.len())..end].to_vec();
        }
        json_response(StatusCode::OK, headers, &Value::Array(entries))
    }

    fn resolve(&self, r: &Req, commit: &str, file: &HubFile, counter: &Arc<AtomicU64>) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert("x-repo-commit", hv(commit));
        if !file.lfs {
            headers.insert(header::ETAG, hv(&format!("\"{}\"", file.oid)));
            let content_type = if file.path.ends_with(".json") {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            return serve_bytes(
                &self.ctl,
                r,
                &file.data,
                &file.about.names,
                headers,
                counter,
            );
        }
        let etag = format!("\"{}\"", file.sha256);
        let location = self.cdn.sign(CdnEntry {
            name: file.sha256.clone(),
            data: file.data.clone(),
            about: file.about.clone(),
            etag: etag.clone(),
        });
        headers.insert(header::LOCATION, hv(&format!("{}{location}", self.cdn_url)));
        headers.insert(header::ETAG, hv(&etag));
        headers.insert("x-linked-etag", hv(&etag));
        headers.insert("x-linked-size", HeaderValue::from(file.data.len()));
        (StatusCode::FOUND, headers).into_response()
    }
}
