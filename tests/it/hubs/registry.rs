//! The fake Ollama registry: manifests, blob `HEAD`s, and blob `GET`s as a 307 to the CDN, with
//! the registry's `{"errors": [...]}` answers.

use super::cdn::{cdn_handler, CdnEntry, CdnState};
use super::control::{Control, Listener};
use super::digest::sha256_digest;
use super::http::{hv, json_response, serve_bytes, About, Req};
use super::server::{bind, Server};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The manifest media type.
pub const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config blob's media type.
pub const CONFIG_V1: &str = "application/vnd.docker.container.image.v1+json";
/// The GGUF weights layer's media type.
pub const MODEL_LAYER: &str = "application/vnd.ollama.image.model";
/// The config blob every [`RegistryModel`] gets.
pub const REGISTRY_CONFIG: &str =
    r#"{"model_format":"gguf","model_family":"llama","model_type":"1M","file_type":"F32"}"#;

/// A model tag on the fake registry: its layers; the config blob and manifest are built.
#[derive(Debug, Clone, Default)]
pub struct RegistryModel {
    pub namespace: String,
    pub model: String,
    pub tag: String,
    /// `(media type, bytes)`, e.g. `(MODEL_LAYER, gguf)`, `("application/vnd.ollama.image.template", ..)`.
    pub layers: Vec<(String, Vec<u8>)>,
}

impl RegistryModel {
    /// `name` is `model`, `model:tag`, `namespace/model` or `namespace/model:tag` (defaults
    /// `library`, `latest`).
    pub fn new(name: &str, layers: Vec<(&str, Vec<u8>)>) -> RegistryModel {
        let (path, tag) = match name.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, t),
            _ => (name, "latest"),
        };
        let (namespace, model) = path.split_once('/').unwrap_or(("library", path));
        RegistryModel {
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
            layers: layers.into_iter().map(|(m, b)| (m.to_owned(), b)).collect(),
        }
    }

    /// The config blob.
    pub fn config(&self) -> Vec<u8> {
        REGISTRY_CONFIG.as_bytes().to_vec()
    }

    /// The manifest, exactly as served: pretty-printed (as Docker's registries serve theirs), so
    /// a client that stores its own encoding instead of these bytes is caught.
    pub fn manifest(&self) -> Vec<u8> {
        let layer = |media: &str, bytes: &[u8]| json!({"mediaType": media, "digest": sha256_digest(bytes), "size": bytes.len()});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": layer(CONFIG_V1, &self.config()),
            "layers": self.layers.iter().map(|(m, b)| layer(m, b)).collect::<Vec<_>>(),
        });
        serde_json::to_vec_pretty(&manifest).unwrap()
    }

    /// `sha256:<hex>` of the manifest.
    pub fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest())
    }

    /// Every blob, `(digest, bytes)`: the config first, then the layers in order.
    pub fn blobs(&self) -> Vec<(String, Vec<u8>)> {
        std::iter::once(self.config())
            .chain(self.layers.iter().map(|(_, b)| b.clone()))
            .map(|b| (sha256_digest(&b), b))
            .collect()
    }

    /// `namespace/model:tag`, the fault key of the manifest.
    pub fn key(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.model, self.tag)
    }
}

struct RegistryState {
    /// (namespace, model, tag) -> manifest.
    manifests: HashMap<(String, String, String), Bytes>,
    /// (namespace, model) -> digest -> bytes.
    blobs: HashMap<(String, String), HashMap<String, Bytes>>,
    ctl: Control,
    cdn_url: String,
    cdn: CdnState,
}

/// A fake Ollama registry: pull `<host_port>/<namespace>/<model>:<tag>` with `insecure`.
/// Derefs to its [`Control`].
pub struct Registry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`, the host part of a model name.
    pub host_port: String,
    /// The CDN's `http://127.0.0.1:PORT`.
    pub cdn_url: String,
    control: Control,
    _server: Server,
}

impl std::ops::Deref for Registry {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Registry {
    pub fn start(models: Vec<RegistryModel>) -> Registry {
        let (main, host_port) = bind();
        let (cdn, cdn_addr) = bind();
        let cdn_url = format!("http://{cdn_addr}");
        let control = Control::default();
        let cdn_state = CdnState {
            ctl: control.clone(),
            sigs: Arc::default(),
        };
        let mut manifests = HashMap::new();
        let mut blobs: HashMap<(String, String), HashMap<String, Bytes>> = HashMap::new();
        for m in &models {
            manifests.insert(
                (m.namespace.clone(), m.model.clone(), m.tag.clone()),
                Bytes::from(m.manifest()),
            );
            let repo = blobs
                .entry((m.namespace.clone(), m.model.clone()))
                .or_default();
            for (digest, bytes) in m.blobs() {
                repo.insert(digest, Bytes::from(bytes));
            }
        }
        let state = Arc::new(RegistryState {
            manifests,
            blobs,
            ctl: control.clone(),
            cdn_url: cdn_url.clone(),
            cdn: cdn_state.clone(),
        });
        let app = Router::new().fallback(registry_handler).with_state(state);
        let cdn_app = Router::new().fallback(cdn_handler).with_state(cdn_state);
        Registry {
            url: format!("http://{host_port}"),
            host_port,
            cdn_url,
            control,
            _server: Server::start(main, app, cdn, cdn_app),
        }
    }

    /// A handle on this registry's log and faults, for another thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The name to pull a model by: `127.0.0.1:PORT/namespace/model:tag`.
    pub fn name(&self, m: &RegistryModel) -> String {
        format!("{}/{}/{}:{}", self.host_port, m.namespace, m.model, m.tag)
    }
}

async fn registry_handler(
    State(s): State<Arc<RegistryState>>,
    req: axum::extract::Request,
) -> Response {
    let r = Req::new(&req);
    let counter = Arc::new(AtomicU64::new(0));
    let (response, about) = s.route(&r, &counter);
    s.ctl
        .record(Listener::Hub, &r, response.status(), about, counter);
    response
}

/// The registry's error answer: `{"errors": [{"code", "message"}]}`.
fn registry_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message}]});
    json_response(status, HeaderMap::new(), &body)
}

impl RegistryState {
    fn route(&self, r: &Req, counter: &Arc<AtomicU64>) -> (Response, Option<About>) {
        if !r.is_read() {
            return (
                registry_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "unsupported"),
                None,
            );
        }
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        match segs.as_slice() {
            ["v2", ns, model, "manifests", tag] => {
                let key = format!("{ns}/{model}:{tag}");
                let about = About {
                    file: key.clone(),
                    names: vec![key],
                };
                if let Some(status) = self.ctl.failure(&about.names) {
                    let status = StatusCode::from_u16(status).unwrap();
                    let e = registry_error(status, "UNKNOWN", "injected failure");
                    return (e, Some(about));
                }
                let id = (ns.to_string(), model.to_string(), tag.to_string());
                let Some(manifest) = self.manifests.get(&id) else {
                    let e = registry_error(
                        StatusCode::NOT_FOUND,
                        "MANIFEST_UNKNOWN",
                        "manifest unknown",
                    );
                    return (e, Some(about));
                };
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MANIFEST_V2));
                headers.insert("docker-content-digest", hv(&sha256_digest(manifest)));
                let response = serve_bytes(&self.ctl, r, manifest, &about.names, headers, counter);
                (response, Some(about))
            }
            ["v2", ns, model, "blobs", digest] => {
                let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
                let canonical = format!("sha256:{hex}");
                let about = About {
                    file: canonical.clone(),
                    names: vec![canonical.clone(), hex.to_owned()],
                };
                if let Some(status) = self.ctl.failure(&about.names) {
                    let status = StatusCode::from_u16(status).unwrap();
                    let e = registry_error(status, "UNKNOWN", "injected failure");
                    return (e, Some(about));
                }
                let blob = self
                    .blobs
                    .get(&(ns.to_string(), model.to_string()))
                    .and_then(|b| b.get(&canonical));
                let Some(blob) = blob else {
                    let e = registry_error(
                        StatusCode::NOT_FOUND,
                        "BLOB_UNKNOWN",
                        "blob unknown to registry",
                    );
                    return (e, Some(about));
                };
                let mut headers = HeaderMap::new();
                headers.insert("docker-content-digest", hv(&canonical));
                if r.method == Method::HEAD {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.len()));
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                    return ((StatusCode::OK, headers).into_response(), Some(about));
                }
                let location = self.cdn.sign(CdnEntry {
                    name: hex.to_owned(),
                    data: blob.clone(),
                    about: about.clone(),
                    etag: format!("\"{hex}\""),
                });
                headers.insert(header::LOCATION, hv(&format!("{}{location}", self.cdn_url)));
                (
                    (StatusCode::TEMPORARY_REDIRECT, headers).into_response(),
                    Some(about),
                )
            }
            _ => (
                registry_error(
                    StatusCode::NOT_FOUND,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                ),
                None,
            ),
        }
    }
}
