//! Ollama's `options` object and `keep_alive` value: the two request fields whose syntax is
//! Ollama's own rather than plain JSON.
//!
//! Options arrive as a free-form JSON object. Known keys are type-checked (integers accept JSON
//! floats, truncated, as Go's reflection-based decoder does); unknown keys are returned so the
//! caller can log them, and keys Ollama removed (`mirostat`, `numa`, ...) are dropped quietly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// Every option Ollama knows. `None` means "not given here": layers are merged with [`Options::or`]
/// (request over model parameters over server defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_keep: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typical_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_last_n: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_batch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_gpu: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_gpu: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_mmap: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_thread: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_num_predict: Option<i64>,
}

/// Keys Ollama removed that old clients (ollama-python's `Options` among them) still send. They
/// are ignored without a warning, as Ollama does.
const REMOVED_KEYS: &[&str] = &[
    "numa",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "embedding_only",
    "tfs_z",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "penalize_newline",
];

/// A known option with a value of the wrong JSON type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("option \"{key}\" must be of type {expected}")]
pub struct OptionTypeError {
    pub key: String,
    pub expected: &'static str,
}

impl Options {
    /// Parses an `options` object. Returns the typed options and the unknown keys (for a warning).
    pub fn from_map(map: &Map<String, Value>) -> Result<(Options, Vec<String>), OptionTypeError> {
        let mut o = Options::default();
        let mut unknown = Vec::new();
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            let int = || as_int(key, value);
            let float = || as_float(key, value);
            match key.as_str() {
                "num_keep" => o.num_keep = Some(int()?),
                "seed" => o.seed = Some(int()?),
                "num_predict" => o.num_predict = Some(int()?),
                "top_k" => o.top_k = Some(int()?),
                "top_p" => o.top_p = Some(float()?),
                "min_p" => o.min_p = Some(float()?),
                "typical_p" => o.typical_p = Some(float()?),
                "repeat_last_n" => o.repeat_last_n = Some(int()?),
                "temperature" => o.temperature = Some(float()?),
                "repeat_penalty" => o.repeat_penalty = Some(float()?),
                "presence_penalty" => o.presence_penalty = Some(float()?),
                "frequency_penalty" => o.frequency_penalty = Some(float()?),
                "stop" => o.stop = Some(as_strings(key, value)?),
                "num_ctx" => o.num_ctx = Some(int()?),
                "num_batch" => o.num_batch = Some(int()?),
                "num_gpu" => o.num_gpu = Some(int()?),
                "main_gpu" => o.main_gpu = Some(int()?),
                "use_mmap" => o.use_mmap = Some(as_bool(key, value)?),
                "num_thread" => o.num_thread = Some(int()?),
                "draft_num_predict" => o.draft_num_predict = Some(int()?),
                k if REMOVED_KEYS.contains(&k) => {}
                _ => unknown.push(key.clone()),
            }
        }
        Ok((o, unknown))
    }

    /// Fills every option not set in `self` from `base`.
    pub fn or(self, base: &Options) -> Options {
        macro_rules! pick {
            ($($f:ident),*) => { Options { $($f: self.$f.or_else(|| base.$f.clone()),)* } };
        }
        pick!(
            num_keep,
            seed,
            num_predict,
            top_k,
            top_p,
            min_p,
            typical_p,
            repeat_last_n,
            temperature,
            repeat_penalty,
            presence_penalty,
            frequency_penalty,
            stop,
            num_ctx,
            num_batch,
            num_gpu,
            main_gpu,
            use_mmap,
            num_thread,
            draft_num_predict
        )
    }

    /// Ollama's `api.DefaultOptions` (num_ctx is resolved separately, from the server config).
    pub fn ollama_defaults() -> Options {
        Options {
            num_keep: Some(4),
            seed: Some(-1),
            num_predict: Some(-1),
            top_k: Some(40),
            top_p: Some(0.9),
            min_p: Some(0.0),
            typical_p: Some(1.0),
            repeat_last_n: Some(64),
            temperature: Some(0.8),
            repeat_penalty: Some(1.0),
            presence_penalty: Some(0.0),
            frequency_penalty: Some(0.0),
            stop: Some(Vec::new()),
            num_batch: Some(512),
            ..Options::default()
        }
    }
}

fn as_int(key: &str, v: &Value) -> Result<i64, OptionTypeError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .ok_or_else(|| type_err(key, "integer")),
        _ => Err(type_err(key, "integer")),
    }
}

fn as_float(key: &str, v: &Value) -> Result<f64, OptionTypeError> {
    v.as_f64().ok_or_else(|| type_err(key, "float"))
}

fn as_bool(key: &str, v: &Value) -> Result<bool, OptionTypeError> {
    v.as_bool().ok_or_else(|| type_err(key, "boolean"))
}

fn as_strings(key: &str, v: &Value) -> Result<Vec<String>, OptionTypeError> {
    match v {
        // A single string is accepted too: more forgiving than Ollama, never ambiguous.
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| type_err(key, "array of strings"))
            })
            .collect(),
        _ => Err(type_err(key, "array of strings")),
    }
}

fn type_err(key: &str, expected: &'static str) -> OptionTypeError {
    OptionTypeError {
        key: key.to_owned(),
        expected,
    }
}

/// How long a model stays loaded after its last request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Unload as soon as the model is idle (`0`).
    Zero,
    /// Unload after this long idle.
    For(Duration),
    /// Never unload (any negative value).
    Forever,
}

impl KeepAlive {
    /// Ollama's default, 5 minutes.
    pub const DEFAULT: KeepAlive = KeepAlive::For(Duration::from_secs(300));

    /// Parses a request's `keep_alive`: a JSON number is seconds (fractions allowed), a string is a
    /// Go duration (`"5m"`, `"1h30m"`, `"0"`, `"-1m"`). A bare `"-1"` string is an error, as in Go.
    pub fn from_json(v: &Value) -> Result<KeepAlive, String> {
        match v {
            Value::Number(n) => {
                let secs = n.as_f64().ok_or("invalid keep_alive")?;
                Ok(Self::from_secs_f64(secs))
            }
            Value::String(s) => parse_go_duration(s.trim()).map(Self::from_signed_nanos),
            _ => Err(format!("invalid keep_alive: {v}")),
        }
    }

    /// Parses `OLLAMA_KEEP_ALIVE`: a Go duration, or bare integer seconds.
    pub fn from_env(s: &str) -> Result<KeepAlive, String> {
        let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
        if let Ok(secs) = s.parse::<i64>() {
            return Ok(Self::from_secs_f64(secs as f64));
        }
        parse_go_duration(s).map(Self::from_signed_nanos)
    }

    fn from_secs_f64(secs: f64) -> KeepAlive {
        if secs < 0.0 {
            KeepAlive::Forever
        } else if secs == 0.0 {
            KeepAlive::Zero
        } else {
            KeepAlive::For(Duration::from_secs_f64(secs.min(1e12)))
        }
    }

    fn from_signed_nanos(ns: i128) -> KeepAlive {
        match ns {
            n if n < 0 => KeepAlive::Forever,
            0 => KeepAlive::Zero,
            n => KeepAlive::For(Duration::from_nanos(n.min(u64::MAX as i128) as u64)),
        }
    }

    /// The idle time before unloading; `None` means never.
    pub fn duration(self) -> Option<Duration> {
        match self {
            KeepAlive::Zero => Some(Duration::ZERO),
            KeepAlive::For(d) => Some(d),
            KeepAlive::Forever => None,
        }
    }
}

/// Parses a Go `time.ParseDuration` string into signed nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let err = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_end == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    let ns = total.round() as i128;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keep_alive_numbers_are_seconds() {
        assert_eq!(KeepAlive::from_json(&json!(0)).unwrap(), KeepAlive::Zero);
        assert_eq!(
            KeepAlive::from_json(&json!(-1)).unwrap(),
            KeepAlive::Forever
        );
        assert_eq!(
            KeepAlive::from_json(&json!(1.5)).unwrap(),
            KeepAlive::For(Duration::from_millis(1500))
        );
    }

    #[test]
    fn keep_alive_strings_are_go_durations() {
        assert_eq!(
            KeepAlive::from_json(&json!("5m")).unwrap(),
            KeepAlive::DEFAULT
        );
        assert_eq!(
            KeepAlive::from_json(&json!("1h30m")).unwrap(),
            KeepAlive::For(Duration::from_secs(5400))
        );
        assert_eq!(KeepAlive::from_json(&json!("0")).unwrap(), KeepAlive::Zero);
        assert_eq!(
            KeepAlive::from_json(&json!("-1m")).unwrap(),
            KeepAlive::Forever
        );
        assert_eq!(
            KeepAlive::from_json(&json!("250ms")).unwrap(),
            KeepAlive::For(Duration::from_millis(250))
        );
        // Go rejects a number without a unit, and so do we.
        assert!(KeepAlive::from_json(&json!("-1")).is_err());
        assert!(KeepAlive::from_json(&json!("5 minutes")).is_err());
        assert!(KeepAlive::from_json(&json!(true)).is_err());
    }

    #[test]
    fn env_keep_alive_also_takes_bare_seconds() {
        assert_eq!(
            KeepAlive::from_env("30").unwrap(),
            KeepAlive::For(Duration::from_secs(30))
        );
        assert_eq!(KeepAlive::from_env("-1").unwrap(), KeepAlive::Forever);
        assert_eq!(
            KeepAlive::from_env("\"10m\"").unwrap(),
            KeepAlive::For(Duration::from_secs(600))
        );
    }

    #[test]
    fn options_types_are_checked() {
        let m = json!({"temperature": 0, "num_predict": 12.7, "stop": ["a"], "seed": 3})
            .as_object()
            .unwrap()
            .clone();
        let (o, unknown) = Options::from_map(&m).unwrap();
        assert_eq!(o.temperature, Some(0.0));
        assert_eq!(o.num_predict, Some(12));
        assert_eq!(o.stop, Some(vec!["a".to_string()]));
        assert!(unknown.is_empty());

        let bad = json!({"temperature": "hot"}).as_object().unwrap().clone();
        let e = Options::from_map(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "option \"temperature\" must be of type float"
        );
        let bad = json!({"num_predict": true}).as_object().unwrap().clone();
        assert!(Options::from_map(&bad).is_err());
    }

    #[test]
    fn unknown_keys_are_reported_removed_keys_are_not() {
        let m = json!({"mirostat": 1, "bogus": 2})
            .as_object()
            .unwrap()
            .clone();
        let (_, unknown) = Options::from_map(&m).unwrap();
        assert_eq!(unknown, vec!["bogus".to_string()]);
    }

    #[test]
    fn layers_merge_request_first() {
        let req = Options {
            temperature: Some(0.1),
            ..Default::default()
        };
        let merged = req.or(&Options::ollama_defaults());
        assert_eq!(merged.temperature, Some(0.1));
        assert_eq!(merged.top_k, Some(40));
    }
}
