//! The create service behind `/api/create` and `/api/copy`: turns a request into Ollama layers
//! and a manifest in Ollama's store. Everything is validated, and every blob written, before the
//! manifest is; the store's write lock serialises creates, copies and deletes, so two creates of
//! one name at once leave one consistent manifest.

use super::error::ServerError;
use super::state::AppState;
use crate::api::{CopyRequest, CreateRequest, Options, ProgressResponse};
use crate::store::facts::human_number;
use crate::store::manifest::{self, ConfigBlob, Layer, Manifest};
use crate::store::name::ModelName;
use crate::store::ollama::BlobDigest;
use crate::store::{LocalModel, Source, StoreError};
use serde_json::{json, Value};

/// Creates a model; returns the progress lines to stream (the last one is `success`).
pub async fn create(
    state: &AppState,
    req: CreateRequest,
) -> Result<Vec<ProgressResponse>, ServerError> {
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
    let _guard = state.store_lock.lock().await;
    let st = state.clone();
    tokio::task::spawn_blocking(move || build(&st, name, req))
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?
}

fn build(
    state: &AppState,
    name: ModelName,
    req: CreateRequest,
) -> Result<Vec<ProgressResponse>, ServerError> {
    let store = &state.store;
    let ollama = &store.ollama;
    let mut progress = Vec::new();
    let mut layers: Vec<Layer> = Vec::new();
    let mut base_params = serde_json::Map::new();
    let (mut format, mut family, mut param_size, mut quant) =
        (String::new(), String::new(), String::new(), String::new());

    // The weights: an uploaded GGUF, or the layers of the model named in `from`.
    if let Some(files) = req.files.as_ref().filter(|f| !f.is_empty()) {
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
        progress.push(ProgressResponse::status("parsing GGUF"));
        let g = crate::store::gguf::read(path, false)
            .map_err(|e| ServerError::BadRequest(format!("invalid GGUF: {e}")))?;
        format = "gguf".into();
        family = g.architecture();
        param_size = human_number(g.parameter_count());
        quant = g.quantization_level();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        layers.push(layer(manifest::MEDIA_MODEL, d.as_str(), size));
    } else if let Some(from) = req.from.as_deref() {
        let base = store.find(from).map_err(|e| match e {
            StoreError::InvalidName | StoreError::NotFound(_) => {
                ServerError::NotFound(format!("base model '{from}' not found"))
            }
            e => e.into(),
        })?;
        let facts = base.facts(false);
        format = base.format.name().into();
        family = facts.architecture.clone();
        param_size = human_number(facts.parameter_count);
        quant = facts.quantization_level.clone();
        match &base.source {
            Source::Ollama { manifest, .. } => {
                for l in &manifest.layers {
                    if l.media_type == manifest::MEDIA_PARAMS {
                        if let Some(p) = ollama
                            .read_text(&l.digest)
                            .and_then(|t| serde_json::from_str(&t).ok())
                        {
                            base_params = p;
                        }
                    }
                    layers.push(Layer {
                        from: None,
                        ..l.clone()
                    });
                }
            }
            Source::HfCache(e) => {
                let reference =
                    serde_json::to_vec(&json!({"repo_id": e.repo_id, "revision": e.revision}))
                        .map_err(|e| ServerError::Internal(e.to_string()))?;
                layers.push(new_layer(
                    state,
                    &mut progress,
                    manifest::MEDIA_HF_REF,
                    &reference,
                )?);
            }
        }
    }

    // What the request sets replaces the base's layer of the same kind.
    let mut replace = |media: &str,
                       bytes: Option<Vec<u8>>,
                       progress: &mut Vec<ProgressResponse>|
     -> Result<(), ServerError> {
        if let Some(b) = bytes {
            layers.retain(|l| l.media_type != media);
            layers.push(new_layer(state, progress, media, &b)?);
        }
        Ok(())
    };
    replace(
        manifest::MEDIA_TEMPLATE,
        req.template.clone().map(String::into_bytes),
        &mut progress,
    )?;
    replace(
        manifest::MEDIA_SYSTEM,
        req.system.clone().map(String::into_bytes),
        &mut progress,
    )?;
    if let Some(p) = &req.parameters {
        Options::from_map(p).map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let mut merged = base_params;
        merged.extend(p.clone());
        let bytes =
            serde_json::to_vec(&merged).map_err(|e| ServerError::Internal(e.to_string()))?;
        replace(manifest::MEDIA_PARAMS, Some(bytes), &mut progress)?;
    }
    if let Some(m) = &req.messages {
        let bytes = serde_json::to_vec(m).map_err(|e| ServerError::Internal(e.to_string()))?;
        replace(manifest::MEDIA_MESSAGES, Some(bytes), &mut progress)?;
    }
    if let Some(lic) = &req.license {
        let texts: Vec<String> = match lic {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => {
                return Err(ServerError::BadRequest(
                    "license must be a string or a list of strings".into(),
                ))
            }
        };
        layers.retain(|l| l.media_type != manifest::MEDIA_LICENSE);
        for t in texts {
            layers.push(new_layer(
                state,
                &mut progress,
                manifest::MEDIA_LICENSE,
                t.as_bytes(),
            )?);
        }
    }
    for (file, digest) in req.adapters.iter().flatten() {
        let d = BlobDigest::parse(digest)
            .map_err(|_| ServerError::BadRequest(format!("invalid digest {digest:?}")))?;
        let size = std::fs::metadata(ollama.blob_path(&d))
            .map_err(|_| {
                ServerError::BadRequest(format!("blob {} for adapter {file} not found", d.as_str()))
            })?
            .len();
        layers.push(layer(manifest::MEDIA_ADAPTER, d.as_str(), size));
    }

    let config = ConfigBlob {
        model_format: format,
        model_families: Some(vec![family.clone()]),
        model_family: family,
        model_type: param_size,
        file_type: quant,
        ..ConfigBlob::default()
    };
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| ServerError::Internal(e.to_string()))?;
    let config_digest = ollama.write_blob(&config_bytes).map_err(StoreError::from)?;
    let m = Manifest::new(
        Layer {
            media_type: manifest::CONFIG_MEDIA_TYPE.into(),
            digest: config_digest.as_str().into(),
            size: config_bytes.len() as u64,
            from: None,
            name: None,
        },
        layers,
    );
    progress.push(ProgressResponse::status("writing manifest"));
    ollama.write_manifest(&name, &m).map_err(StoreError::from)?;
    progress.push(ProgressResponse::status("success"));
    Ok(progress)
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

/// Stores bytes as a blob and reports whether it was new, as Ollama's create does.
fn new_layer(
    state: &AppState,
    progress: &mut Vec<ProgressResponse>,
    media: &str,
    bytes: &[u8],
) -> Result<Layer, ServerError> {
    let ollama = &state.store.ollama;
    let d = BlobDigest::of_bytes(bytes);
    let existed = ollama.blob_path(&d).is_file();
    ollama.write_blob(bytes).map_err(StoreError::from)?;
    let verb = if existed {
        "using existing layer"
    } else {
        "creating new layer"
    };
    progress.push(ProgressResponse::status(format!("{verb} {}", d.as_str())));
    Ok(layer(media, d.as_str(), bytes.len() as u64))
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
            tokio::task::spawn_blocking(move || build(&st, dest, req))
                .await
                .map_err(|e| ServerError::Internal(e.to_string()))??;
        }
    }
    Ok(())
}
