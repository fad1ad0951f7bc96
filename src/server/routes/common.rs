//! Validation shared by generate and chat.

use crate::api::{KeepAlive, Options};
use crate::server::error::ServerError;
use crate::server::state::AppState;
use crate::store::LocalModel;
use serde_json::{Map, Value};

/// Parses `keep_alive` (absent or null: `None`, keep the runner's current value).
pub fn keep_alive(v: &Option<Value>) -> Result<Option<KeepAlive>, ServerError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => KeepAlive::from_json(v)
            .map(Some)
            .map_err(ServerError::BadRequest),
    }
}

/// Parses `options`, logging unknown keys.
pub fn options(map: &Option<Map<String, Value>>) -> Result<Options, ServerError> {
    let Some(map) = map else {
        return Ok(Options::default());
    };
    let (o, unknown) =
        Options::from_map(map).map_err(|e| ServerError::BadRequest(e.to_string()))?;
    for key in unknown {
        tracing::warn!(option = %key, "invalid option provided");
    }
    Ok(o)
}

/// `top_logprobs` must be within 0..=20.
pub fn top_logprobs(v: Option<i64>) -> Result<(), ServerError> {
    match v {
        Some(n) if !(0..=20).contains(&n) => Err(ServerError::BadRequest(
            "top_logprobs must be between 0 and 20".into(),
        )),
        _ => Ok(()),
    }
}

/// Validates `format`. Structured outputs are not implemented yet: refuse clearly rather than
/// return unconstrained text the client would fail to parse.
pub fn format(v: &Option<Value>) -> Result<(), ServerError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() => Ok(()),
        Some(Value::String(s)) if s == "json" => Err(unsupported_format()),
        Some(Value::Object(_)) => Err(unsupported_format()),
        Some(other) => Err(ServerError::BadRequest(format!(
            "invalid format: {other}; expected \"json\" or a valid JSON Schema object"
        ))),
    }
}

fn unsupported_format() -> ServerError {
    ServerError::BadRequest("structured outputs (format) are not supported by ollmlx yet".into())
}

/// Validates `think` and says whether thinking was asked for.
pub fn think(v: &Option<Value>) -> Result<bool, ServerError> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(Value::String(s)) if ["low", "medium", "high", "max"].contains(&s.as_str()) => {
            Ok(true)
        }
        Some(other) => Err(ServerError::BadRequest(format!(
            "invalid think value: {other}"
        ))),
    }
}

/// A request with nothing to generate: `keep_alive: 0` unloads the model (without loading it
/// first), anything else loads it. Returns Ollama's `done_reason`, `unload` or `load`.
pub async fn load_or_unload(
    state: &AppState,
    model: LocalModel,
    keep_alive: Option<KeepAlive>,
    options: &Options,
) -> Result<&'static str, ServerError> {
    if keep_alive == Some(KeepAlive::Zero) {
        state.scheduler.expire(model.key());
        Ok("unload")
    } else {
        let o = options
            .clone()
            .or(&model.config.params)
            .or(&Options::ollama_defaults());
        let load = crate::server::infer::load_options(state, &model, &o);
        drop(state.scheduler.acquire(model, keep_alive, load).await?);
        Ok("load")
    }
}
