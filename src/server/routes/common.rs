//! Validation shared by generate and chat.

use crate::api::{KeepAlive, Logprob, Options, Think, ToolChoice};
use crate::server::error::ServerError;
use crate::server::plan::TemplateTraits;
use crate::server::state::AppState;
use crate::store::LocalModel;
use serde_json::{Map, Value};

/// A 400 with this message (the compatibility layers' validation).
pub fn bad(message: impl Into<String>) -> ServerError {
    ServerError::BadRequest(message.into())
}

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

/// `logprobs` and `top_logprobs` (0..=20) as the number of alternatives to return, or `None`.
pub fn logprobs(logprobs: bool, top: Option<i64>) -> Result<Option<u32>, ServerError> {
    match top {
        Some(n) if !(0..=20).contains(&n) => Err(ServerError::BadRequest(
            "top_logprobs must be between 0 and 20".into(),
        )),
        // Ollama returns log probabilities when either is set.
        Some(n) if n > 0 => Ok(Some(n as u32)),
        _ => Ok(logprobs.then_some(0)),
    }
}

/// Log probabilities for the native API: `bytes` is the UTF-8 encoding of `token` (U+FFFD for a
/// partial character), as Ollama's `toAPILogprobs` sends. The runners send the token's raw bytes,
/// which the OpenAI layer keeps.
pub fn native_logprobs(mut lps: Vec<Logprob>) -> Vec<Logprob> {
    for lp in &mut lps {
        lp.bytes = lp.token.as_bytes().to_vec();
        for top in &mut lp.top_logprobs {
            top.bytes = top.token.as_bytes().to_vec();
        }
    }
    lps
}

/// Validates `format`: `"json"`, a JSON-schema object, or nothing (`null`, `""`).
pub fn format(v: &Option<Value>) -> Result<Option<Value>, ServerError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(Value::String(s.clone()))),
        Some(Value::Object(o)) if o.is_empty() => Ok(Some(Value::String("json".into()))),
        Some(Value::Object(_)) => Ok(v.clone()),
        Some(other) => Err(ServerError::BadRequest(format!(
            "invalid format: {other}; expected \"json\" or a valid JSON Schema object"
        ))),
    }
}

/// Validates `think`.
pub fn think(v: &Option<Value>) -> Result<Option<Think>, ServerError> {
    Think::from_json(v).map_err(ServerError::BadRequest)
}

/// A fill-in-the-middle prompt: only a Go template that uses `.Suffix` knows how to write one
/// (Ollama's `insert` capability), from the model's TEMPLATE layer or the request's `template`.
pub fn fill_in_the_middle(
    model: &LocalModel,
    prompt: &str,
    suffix: &str,
) -> Result<String, ServerError> {
    use crate::template::prompt;
    let template = model
        .config
        .template
        .as_deref()
        .and_then(|t| prompt::parse(t).ok())
        .filter(|t| prompt::capabilities(t).insert)
        .ok_or_else(|| {
            ServerError::BadRequest(format!(
                "{} does not support insert",
                model.name.display_shortest()
            ))
        })?;
    prompt::render_fim(&template, prompt, suffix, &Default::default())
        .map_err(|e| ServerError::Internal(format!("rendering the template failed: {e}")))
}

/// `tool_choice` in any layer's spelling: OpenAI's `"required"` and `{"type": "function",
/// "function": {"name"}}`, the Responses API's `{"type": "function", "name"}`, Anthropic's
/// `{"type": "any"}` and `{"type": "tool", "name"}`. Anything else (`"auto"`, `"none"`, absent)
/// leaves the choice to the model; `none` is handled by not sending the tools.
pub fn tool_choice(v: Option<&Value>) -> ToolChoice {
    let Some(v) = v else {
        return ToolChoice::Auto;
    };
    let name = v["function"]["name"]
        .as_str()
        .or_else(|| v["name"].as_str());
    match (v.as_str(), v["type"].as_str(), name) {
        (Some("required"), _, _) | (_, Some("any"), _) => ToolChoice::Required,
        (_, Some("function" | "tool"), Some(n)) => ToolChoice::Named(n.to_owned()),
        _ => ToolChoice::Auto,
    }
}

/// Checks a request's tools and thinking against what the model's template can do, and returns
/// what the template can do. `requested` is the name as the client sent it. With `relax_think`
/// (Anthropic's layer), thinking asked of a model that cannot think is dropped instead of refused.
pub fn check_features(
    model: &LocalModel,
    requested: &str,
    tools: &[Value],
    think: &mut Option<Think>,
    relax_think: bool,
) -> Result<TemplateTraits, ServerError> {
    let traits = TemplateTraits::of(model);
    if !traits.can_think() && think.as_ref().is_some_and(Think::is_on) {
        if !relax_think {
            return Err(ServerError::BadRequest(format!(
                "\"{requested}\" does not support thinking"
            )));
        }
        *think = None;
    }
    if !tools.is_empty() && traits.tools.is_none() {
        return Err(ServerError::BadRequest(format!(
            "\"{requested}\" does not support tools"
        )));
    }
    Ok(traits)
}

/// Checks that each image is standard base64, as Ollama's request binding does (`illegal base64
/// data at input byte N` otherwise). Returns whether there is any image.
pub fn check_base64<'a>(images: impl IntoIterator<Item = &'a String>) -> Result<bool, ServerError> {
    let mut any = false;
    for image in images {
        if let Some(at) = base64_error(image) {
            return Err(ServerError::BadRequest(format!(
                "illegal base64 data at input byte {at}"
            )));
        }
        any = true;
    }
    Ok(any)
}

/// Images need a model that reads them: `<name> does not support vision` otherwise. The same
/// test decides whether `/api/show` lists `vision`.
pub fn check_vision(model: &LocalModel, has_images: bool) -> Result<(), ServerError> {
    if has_images && !model.has_vision() {
        return Err(ServerError::BadRequest(format!(
            "{} does not support vision",
            model.name.display_shortest()
        )));
    }
    Ok(())
}

/// Where standard, padded base64 (Go's `base64.StdEncoding`, which skips `\r` and `\n`) goes
/// wrong: the byte offset of the first bad character, or of the end when it stops mid-quantum.
/// `None` when the text is valid.
pub fn base64_error(text: &str) -> Option<usize> {
    let mut n = 0; // characters of the current quantum
    let mut pad = 0; // `=` seen in it
    let mut last = 0;
    for (i, c) in text.bytes().enumerate() {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        last = i;
        let ok = match c {
            b'=' => n >= 2,
            _ if pad > 0 => false,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => true,
            _ => false,
        };
        if !ok {
            return Some(i);
        }
        if c == b'=' {
            pad += 1;
        }
        n += 1;
        if n == 4 {
            if pad > 0 && text[i + 1..].bytes().any(|c| c != b'\r' && c != b'\n') {
                return Some(i + 1);
            }
            n = 0;
        }
    }
    (n != 0).then_some(if n == 1 { last } else { text.len() })
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

/// A fresh object id in the style of Anthropic's and OpenAI's (`msg_`, `resp_`, `toolu_`, ...):
/// the prefix, `_`, and 24 random hex digits.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}_{:024x}", rand::random::<u128>() >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_choice_in_every_spelling() {
        let named = ToolChoice::Named("f".into());
        for (v, want) in [
            (json!("required"), ToolChoice::Required),
            (json!({"type": "any"}), ToolChoice::Required),
            (
                json!({"type": "function", "function": {"name": "f"}}),
                named.clone(),
            ),
            (json!({"type": "function", "name": "f"}), named.clone()),
            (json!({"type": "tool", "name": "f"}), named),
            (json!("auto"), ToolChoice::Auto),
            (json!({"type": "auto"}), ToolChoice::Auto),
            (json!("none"), ToolChoice::Auto),
        ] {
            assert_eq!(tool_choice(Some(&v)), want, "{v}");
        }
        assert_eq!(tool_choice(None), ToolChoice::Auto);
    }

    /// Ollama's integration test `TestAPI/generate-logprobs` asserts `bytes == []byte(token)`
    /// on both endpoints; the runner's raw bytes of a partial character are not that.
    #[test]
    fn native_logprob_bytes_are_the_tokens_utf8() {
        use crate::api::{ChatResponse, GenerateResponse, TokenLogprob};
        use crate::server::infer::Delta;
        use crate::server::ndjson::Chunk;
        let raw = |token: &str, bytes: &[u8]| TokenLogprob {
            token: token.into(),
            logprob: -0.5,
            bytes: bytes.to_vec(),
        };
        // "日" is E6 97 A5, split over two tokens; the runner decodes each with U+FFFD.
        let lps = vec![
            Logprob {
                token: "\u{FFFD}".into(),
                logprob: -0.5,
                bytes: vec![0xE6, 0x97],
                top_logprobs: vec![raw("\u{FFFD}", &[0xE6, 0x97]), raw("a", b"a")],
            },
            Logprob {
                token: "\u{FFFD}".into(),
                logprob: -0.1,
                bytes: vec![0xA5],
                top_logprobs: vec![],
            },
        ];
        let delta = Delta {
            logprobs: lps,
            ..Default::default()
        };
        let fffd = json!([0xEF, 0xBF, 0xBD]);
        for v in [
            serde_json::to_value(GenerateResponse::build("m", delta.clone(), None)).unwrap(),
            serde_json::to_value(ChatResponse::build("m", delta.clone(), None)).unwrap(),
        ] {
            let l = &v["logprobs"];
            assert_eq!(l[0]["bytes"], fffd, "{v}");
            assert_eq!(l[0]["top_logprobs"][0]["bytes"], fffd, "{v}");
            assert_eq!(l[0]["top_logprobs"][1]["bytes"], json!([97]), "{v}");
            assert_eq!(l[1]["bytes"], fffd, "{v}");
        }
    }

    #[test]
    fn base64_is_checked_as_go_does() {
        for ok in ["", "aGk=", "aGVsbG8=", "aGVs\nbG8h", "AAAA\r\n"] {
            assert_eq!(base64_error(ok), None, "{ok:?}");
        }
        assert_eq!(base64_error("aGk"), Some(3));
        assert_eq!(base64_error("a"), Some(0));
        assert_eq!(base64_error("aG!k"), Some(2));
        assert_eq!(base64_error("a=AA"), Some(1));
        assert_eq!(base64_error("aG=k"), Some(3));
        assert_eq!(base64_error("aGk=aGk="), Some(4));
        assert_eq!(base64_error("not base64!"), Some(3));
    }
}
