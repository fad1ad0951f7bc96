//! The create service behind `/api/create` and `/api/copy`: turns a request into Ollama layers
//! and a manifest in Ollama's store. Everything is validated, and every blob written, before the
//! manifest is; the store's write lock serialises creates, copies and deletes, so two creates of
//! one name at once leave one consistent manifest.
//!
//! Progress streams as the build goes (Ollama's `CreateHandler` does the same from its
//! goroutine): the build runs on the blocking pool and sends each line down a channel. An error
//! before the first line is still an error status (a bad request is refused, not streamed); an
//! error after it ends the stream as an `{"error": ...}` line.

use super::error::ServerError;
use super::state::AppState;
use crate::api::{CopyRequest, CreateRequest, Options, ProgressResponse};
use crate::store::facts::human_number;
use crate::store::format::Format;
use crate::store::gojson;
use crate::store::manifest::{self, ConfigBlob, Layer, Manifest};
use crate::store::name::ModelName;
use crate::store::ollama::BlobDigest;
use crate::store::{LocalModel, Source, StoreError};
use futures_util::Stream;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// A create's progress as it happens: lines up to `success`, or an error last.
pub type Progress =
    std::pin::Pin<Box<dyn Stream<Item = Result<ProgressResponse, ServerError>> + Send + 'static>>;

/// Where the build reports its progress; a hung-up client does not stop the build.
type Sink = UnboundedSender<Result<ProgressResponse, ServerError>>;

/// Starts creating a model. Returns once the first progress line is out (so that a request
/// refused before any work is an error status), with the rest to stream.
pub async fn create(state: &AppState, req: CreateRequest) -> Result<Progress, ServerError> {
    let raw = if req.model.is_empty() {
        req.name.clone()
    } else {
        req.model.clone()
    };
    let name =
        ModelName::parse(&raw).map_err(|_| ServerError::BadRequest("invalid model name".into()))?;
    if req.from.as_deref().is_none_or(str::is_empty)
        && req.files.as_ref().is_none_or(|f| f.is_empty())
    {
        return Err(ServerError::BadRequest(
            "neither 'from' or 'files' was specified".into(),
        ));
    }
    if req.quantize.as_deref().is_some_and(|q| !q.is_empty()) {
        return Err(ServerError::BadRequest(
            "quantizing is not supported by ollmlx yet: create the model from an already quantized GGUF".into(),
        ));
    }
    let (tx, rx) = unbounded_channel();
    let st = state.clone();
    tokio::spawn(async move {
        let _guard = st.store_lock.clone().lock_owned().await;
        let sink = tx.clone();
        let built = tokio::task::spawn_blocking(move || build(&st, name, req, sink)).await;
        let failed = match built {
            Ok(r) => r.err(),
            Err(e) => Some(ServerError::Internal(e.to_string())),
        };
        if let Some(e) = failed {
            let _ = tx.send(Err(e));
        }
    });
    let mut lines = UnboundedReceiverStream::new(rx);
    use futures_util::StreamExt;
    match lines.next().await {
        Some(Ok(first)) => Ok(Box::pin(
            futures_util::stream::once(async { Ok(first) }).chain(lines),
        )),
        Some(Err(e)) => Err(e),
        None => Err(ServerError::Internal(
            "the create stopped without a word".into(),
        )),
    }
}

/// Builds the model under the store lock: weights first, then the layers the request sets, then
/// the config blob and the manifest, reporting progress to `sink` on the way.
fn build(
    state: &AppState,
    name: ModelName,
    req: CreateRequest,
    sink: Sink,
) -> Result<(), ServerError> {
    let mut draft = Draft::new(state, sink);
    // The weights: an uploaded GGUF, or the layers of the model named in `from`.
    if let Some(files) = req.files.as_ref().filter(|f| !f.is_empty()) {
        draft.weights_from_files(files)?;
    } else if let Some(from) = req.from.as_deref() {
        draft.weights_from_model(from)?;
    }
    draft.request_layers(&req)?;
    draft.adapters(req.adapters.iter().flatten())?;
    draft.write_manifest(&name)
}

/// A model being created: its layers so far, where its progress goes, and what its config blob
/// will record about the weights.
struct Draft<'a> {
    state: &'a AppState,
    layers: Vec<Layer>,
    progress: Sink,
    /// The base model's parameters, which the request's `parameters` are merged over.
    base_params: serde_json::Map<String, Value>,
    config: ConfigBlob,
}

impl<'a> Draft<'a> {
    fn new(state: &'a AppState, progress: Sink) -> Draft<'a> {
        Draft {
            state,
            layers: Vec::new(),
            progress,
            base_params: serde_json::Map::new(),
            config: ConfigBlob::default(),
        }
    }

    /// What the config blob says about the weights (Ollama's `model_format`, family, size and
    /// quantization).
    fn describe(&mut self, format: &str, family: String, parameters: u64, quant: String) {
        self.config = ConfigBlob {
            model_format: format.into(),
            model_families: Some(vec![family.clone()]),
            model_family: family,
            model_type: human_number(parameters),
            file_type: quant,
            ..ConfigBlob::default()
        };
    }

    /// `files`: uploaded blobs, of which exactly one must be a GGUF (safetensors are not
    /// converted).
    fn weights_from_files<'f>(
        &mut self,
        files: impl IntoIterator<Item = (&'f String, &'f String)>,
    ) -> Result<(), ServerError> {
        let ollama = &self.state.store.ollama;
        let mut ggufs = Vec::new();
        for (file, digest) in files {
            if file.starts_with('/') || file.split(['/', '\\']).any(|p| p == "..") {
                return Err(ServerError::BadRequest("file path must be relative".into()));
            }
            let d = BlobDigest::parse(digest)
                .map_err(|_| ServerError::BadRequest(format!("invalid digest {digest:?}")))?;
            let path = ollama.blob_path(&d);
            if !path.is_file() {
                return Err(ServerError::BadRequest(format!(
                    "blob {} not found: upload it first",
                    d.as_str()
                )));
            }
            if crate::store::format::is_gguf(&path) {
                ggufs.push((d, path));
            } else if file.ends_with(".gguf") {
                return Err(ServerError::BadRequest(format!(
                    "{file} is not a GGUF file"
                )));
            }
        }
        let [(d, path)] = ggufs.as_slice() else {
            return Err(ServerError::BadRequest(if ggufs.is_empty() {
                "creating a model from safetensors files is not supported yet: keep it in the Hugging Face cache and use FROM <repo id>".into()
            } else {
                "more than one GGUF file was given".into()
            }));
        };
        // Parsed before it is announced: a file that is no GGUF is refused with a 400, before
        // anything streams.
        let g = crate::store::gguf::read(path, false)
            .map_err(|e| ServerError::BadRequest(format!("invalid GGUF: {e}")))?;
        self.report(ProgressResponse::status("parsing GGUF"));
        self.describe(
            "gguf",
            g.architecture(),
            g.parameter_count(),
            g.ollama_file_type(),
        );
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.layers
            .push(layer(manifest::MEDIA_MODEL, d.as_str(), size));
        Ok(())
    }

    /// `from`: an Ollama model lends its layers (and its parameters, for merging); an MLX model
    /// in the Hugging Face cache becomes a reference layer naming its snapshot.
    fn weights_from_model(&mut self, from: &str) -> Result<(), ServerError> {
        let base = self.state.store.find(from).map_err(|e| match e {
            StoreError::InvalidName | StoreError::NotFound(_) => {
                ServerError::NotFound(format!("base model '{from}' not found"))
            }
            e => e.into(),
        })?;
        let facts = base.facts(false);
        let file_type = match &base.format {
            Format::Gguf(p) => crate::store::gguf::read(p, false)
                .map(|g| g.ollama_file_type())
                .unwrap_or_else(|_| facts.quantization_level.clone()),
            Format::Mlx(_) => facts.quantization_level.clone(),
        };
        self.describe(
            base.format.name(),
            facts.architecture.clone(),
            facts.parameter_count,
            file_type,
        );
        // Ollama marks every layer taken from the base with the base's name.
        let from = base.name.display_shortest();
        match &base.source {
            Source::Ollama { manifest, .. } => {
                for l in &manifest.layers {
                    if l.media_type == manifest::MEDIA_PARAMS {
                        if let Some(p) = self
                            .state
                            .store
                            .ollama
                            .read_text(&l.digest)
                            .and_then(|t| serde_json::from_str(&t).ok())
                        {
                            self.base_params = p;
                        }
                    }
                    self.layers.push(Layer {
                        from: Some(from.clone()),
                        ..l.clone()
                    });
                }
            }
            Source::HfCache(e) => {
                let reference =
                    serde_json::to_vec(&json!({"repo_id": e.repo_id, "revision": e.revision}))
                        .map_err(|e| ServerError::Internal(e.to_string()))?;
                self.add(manifest::MEDIA_HF_REF, &reference)?;
            }
        }
        Ok(())
    }

    /// The layers the request sets, in Ollama's order (template, system, license, parameters,
    /// messages), each replacing the base's layer of the same kind.
    fn request_layers(&mut self, req: &CreateRequest) -> Result<(), ServerError> {
        if let Some(t) = &req.template {
            self.replace(manifest::MEDIA_TEMPLATE, t.as_bytes())?;
        }
        if let Some(s) = &req.system {
            self.replace(manifest::MEDIA_SYSTEM, s.as_bytes())?;
        }
        if let Some(lic) = &req.license {
            let texts: Vec<&str> = match lic {
                Value::String(s) => vec![s],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => {
                    return Err(ServerError::BadRequest(
                        "license must be a string or a list of strings".into(),
                    ))
                }
            };
            self.layers
                .retain(|l| l.media_type != manifest::MEDIA_LICENSE);
            for t in texts {
                self.add(manifest::MEDIA_LICENSE, t.as_bytes())?;
            }
        }
        if let Some(p) = &req.parameters {
            Options::from_map(p).map_err(|e| ServerError::BadRequest(e.to_string()))?;
            let mut merged = std::mem::take(&mut self.base_params);
            merged.extend(p.clone());
            // Written as Ollama writes the map (sorted keys, Go's encoder): the same
            // parameters are the same blob in both.
            let bytes = gojson::encode(&gojson::sorted(&Value::Object(merged)));
            self.replace(manifest::MEDIA_PARAMS, &bytes)?;
        }
        if let Some(m) = &req.messages {
            let messages =
                serde_json::to_value(m).map_err(|e| ServerError::Internal(e.to_string()))?;
            self.replace(manifest::MEDIA_MESSAGES, &gojson::encode(&messages))?;
        }
        Ok(())
    }

    /// LoRA adapters: blobs uploaded beforehand, referenced as they are.
    fn adapters<'f>(
        &mut self,
        adapters: impl IntoIterator<Item = (&'f String, &'f String)>,
    ) -> Result<(), ServerError> {
        for (file, digest) in adapters {
            let d = BlobDigest::parse(digest)
                .map_err(|_| ServerError::BadRequest(format!("invalid digest {digest:?}")))?;
            let size = std::fs::metadata(self.state.store.ollama.blob_path(&d))
                .map_err(|_| {
                    ServerError::BadRequest(format!(
                        "blob {} for adapter {file} not found",
                        d.as_str()
                    ))
                })?
                .len();
            self.layers
                .push(layer(manifest::MEDIA_ADAPTER, d.as_str(), size));
        }
        Ok(())
    }

    /// Writes the config blob, then the manifest (after every blob it names exists).
    fn write_manifest(mut self, name: &ModelName) -> Result<(), ServerError> {
        let ollama = &self.state.store.ollama;
        let config_bytes = self.config.to_bytes();
        let config_digest = ollama.write_blob(&config_bytes).map_err(StoreError::from)?;
        let config = layer(
            manifest::CONFIG_MEDIA_TYPE,
            config_digest.as_str(),
            config_bytes.len() as u64,
        );
        let m = Manifest::new(config, std::mem::take(&mut self.layers));
        self.report(ProgressResponse::status("writing manifest"));
        ollama.write_manifest(name, &m).map_err(StoreError::from)?;
        self.report(ProgressResponse::status("success"));
        Ok(())
    }

    /// Sends a progress line (nobody may be listening: a copy, or a client that hung up).
    fn report(&self, line: ProgressResponse) {
        let _ = self.progress.send(Ok(line));
    }

    /// Replaces the layer of this media type with `bytes`.
    fn replace(&mut self, media: &str, bytes: &[u8]) -> Result<(), ServerError> {
        self.layers.retain(|l| l.media_type != media);
        self.add(media, bytes)
    }

    /// Stores `bytes` as a blob and adds its layer, reporting whether the blob was new, as
    /// Ollama's create does.
    fn add(&mut self, media: &str, bytes: &[u8]) -> Result<(), ServerError> {
        let ollama = &self.state.store.ollama;
        let d = BlobDigest::of_bytes(bytes);
        let existed = ollama.blob_path(&d).is_file();
        ollama.write_blob(bytes).map_err(StoreError::from)?;
        let verb = if existed {
            "using existing layer"
        } else {
            "creating new layer"
        };
        self.report(ProgressResponse::status(format!("{verb} {}", d.as_str())));
        self.layers
            .push(layer(media, d.as_str(), bytes.len() as u64));
        Ok(())
    }
}

fn layer(media: &str, digest: &str, size: u64) -> Layer {
    Layer {
        media_type: media.into(),
        digest: digest.into(),
        size,
        from: None,
        name: None,
    }
}

/// Copies a model under a new name (a second manifest over the same blobs).
pub async fn copy(state: &AppState, req: CopyRequest) -> Result<(), ServerError> {
    ModelName::parse(&req.source)
        .map_err(|_| ServerError::BadRequest(format!("source \"{}\" is invalid", req.source)))?;
    let dest = ModelName::parse(&req.destination).map_err(|_| {
        ServerError::BadRequest(format!("destination \"{}\" is invalid", req.destination))
    })?;
    let _guard = state.store_lock.lock().await;
    let source: LocalModel = state.store.find(&req.source).map_err(|e| match e {
        StoreError::NotFound(_) => {
            ServerError::NotFound(format!("model \"{}\" not found", req.source))
        }
        e => e.into(),
    })?;
    match &source.source {
        Source::Ollama { manifest_path, .. } => {
            // The same bytes, as Ollama copies: the copy keeps the model's ID.
            let bytes = std::fs::read(manifest_path).map_err(StoreError::from)?;
            state
                .store
                .ollama
                .write_manifest_bytes(&dest, &bytes)
                .map_err(StoreError::from)?;
        }
        Source::HfCache(_) => {
            // A copy of an MLX model is a model built `from` it.
            let req = CreateRequest {
                model: req.destination.clone(),
                from: Some(req.source.clone()),
                ..Default::default()
            };
            let st = state.clone();
            // A copy reports nothing: its progress goes nowhere.
            let (sink, _) = unbounded_channel();
            tokio::task::spawn_blocking(move || build(&st, dest, req, sink))
                .await
                .map_err(|e| ServerError::Internal(e.to_string()))??;
        }
    }
    Ok(())
}
