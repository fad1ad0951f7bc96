//! Conversion of a parsed Modelfile into a create request: typed `PARAMETER` values, repeated
//! `stop`/`LICENSE`/`MESSAGE` commands, `REQUIRES` checks and warnings for ignored commands.

use super::paths::{expand_path, local_files};
use super::{Modelfile, Plan};
use crate::api::{CreateRequest, Message};
use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};
use std::path::Path;

/// `PARAMETER`s whose values are integers (Ollama's `api.Options` and `api.Runner` int fields).
const INT_PARAMETERS: &[&str] = &[
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "repeat_last_n",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "draft_num_predict",
];

/// `PARAMETER`s whose values are floats (`float32` in Ollama).
const FLOAT_PARAMETERS: &[&str] = &[
    "top_p",
    "min_p",
    "typical_p",
    "temperature",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
];

const BOOL_PARAMETERS: &[&str] = &["use_mmap"];

/// Ollama's `deprecatedParameters`: a warning, and the parameter is left out.
const DEPRECATED_PARAMETERS: &[&str] = &[
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

impl Modelfile {
    /// [`Modelfile::plan`] with the home folder given.
    pub(super) fn plan_with_home(
        &self,
        relative_dir: &Path,
        home: Option<&Path>,
    ) -> anyhow::Result<Plan> {
        let mut req = CreateRequest::default();
        let mut files = Vec::new();
        let mut adapters = Vec::new();
        let mut warnings = Vec::new();
        let mut parameters = Map::new();
        let mut licenses = Vec::new();
        let mut messages = Vec::new();
        let mut ignored: Vec<&str> = Vec::new();

        for c in &self.commands {
            match c.name.as_str() {
                "model" => {
                    let path = expand_path(&c.args, relative_dir, home)?;
                    match std::fs::metadata(&path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            req.from = Some(c.args.clone());
                        }
                        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
                        Ok(meta) => files.extend(local_files(&path, meta.is_dir())?),
                    }
                }
                "adapter" => {
                    let path = expand_path(&c.args, relative_dir, home)?;
                    let meta = std::fs::metadata(&path)
                        .with_context(|| format!("ADAPTER {}", path.display()))?;
                    // Each ADAPTER replaces the one before, as in Ollama.
                    adapters = local_files(&path, meta.is_dir())?;
                }
                "template" => req.template = Some(c.args.clone()).filter(|s| !s.is_empty()),
                "system" => req.system = Some(c.args.clone()).filter(|s| !s.is_empty()),
                "license" => licenses.push(Value::String(c.args.clone())),
                "message" => {
                    let (role, content) = c.args.split_once(": ").unwrap_or((&c.args, ""));
                    messages.push(Message::new(role, content));
                }
                "requires" | "renderer" | "parser" | "draft" => {
                    if c.name == "requires" {
                        let v = if c.args.starts_with('v') {
                            c.args.clone()
                        } else {
                            format!("v{}", c.args)
                        };
                        if !is_semver(&v) {
                            bail!("requires must be a valid semver (e.g. 0.14.0)");
                        }
                    }
                    if !ignored.contains(&c.name.as_str()) {
                        ignored.push(&c.name);
                    }
                }
                name if DEPRECATED_PARAMETERS.contains(&name) => {
                    warnings.push(format!("warning: parameter {name} is deprecated"))
                }
                name => {
                    let value = parameter_value(name, &c.args)?;
                    if name == "stop" {
                        let list = parameters
                            .entry("stop")
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Value::Array(items) = list {
                            items.push(value);
                        }
                    } else {
                        parameters.insert(name.to_owned(), value);
                    }
                }
            }
        }

        for name in ignored {
            warnings.push(format!(
                "warning: {} is not supported by ollmlx yet and was ignored",
                name.to_uppercase()
            ));
        }
        if !parameters.is_empty() {
            req.parameters = Some(parameters);
        }
        if !licenses.is_empty() {
            req.license = Some(Value::Array(licenses));
        }
        if !messages.is_empty() {
            req.messages = Some(messages);
        }
        Ok(Plan {
            request: req,
            files,
            adapters,
            warnings,
        })
    }
}

/// A `PARAMETER` value typed as Ollama's `api.FormatParams` types it; errors use its words.
pub fn parameter_value(name: &str, value: &str) -> anyhow::Result<Value> {
    if name == "stop" {
        Ok(Value::String(value.to_owned()))
    } else if INT_PARAMETERS.contains(&name) {
        value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| anyhow!("invalid int value [{value}]"))
    } else if FLOAT_PARAMETERS.contains(&name) {
        parse_float32(value)
            .map(Value::from)
            .ok_or_else(|| anyhow!("invalid float value [{value}]"))
    } else if BOOL_PARAMETERS.contains(&name) {
        parse_go_bool(value)
            .map(Value::from)
            .ok_or_else(|| anyhow!("invalid bool value [{value}]"))
    } else {
        Err(anyhow!("unknown parameter '{name}'"))
    }
}

/// `strconv.ParseFloat(s, 32)`, as the shortest decimal that round-trips the `float32` (so `0.1`
/// is sent as `0.1`, not `0.10000000149011612`). Out of range, NaN and infinities are refused:
/// Go would refuse the first, and JSON cannot carry the others.
fn parse_float32(s: &str) -> Option<f64> {
    let f: f32 = s.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    f.to_string().parse().ok()
}

/// `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `golang.org/x/mod/semver.IsValid`: `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`, numbers
/// without leading zeros; the short forms `v1` and `v1.2` take no suffix.
pub(super) fn is_semver(v: &str) -> bool {
    fn number(s: &str) -> Option<(&str, &str)> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, rest) = s.split_at(end);
        (!n.is_empty() && (n == "0" || !n.starts_with('0'))).then_some((n, rest))
    }
    fn idents(s: &str, numeric_no_leading_zero: bool) -> bool {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !(numeric_no_leading_zero
                    && id.len() > 1
                    && id.starts_with('0')
                    && id.chars().all(|c| c.is_ascii_digit()))
        })
    }
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let Some((_, rest)) = number(rest) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some((_, rest)) = rest.strip_prefix('.').and_then(number) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some((_, rest)) = rest.strip_prefix('.').and_then(number) else {
        return false;
    };
    let (pre, build) = match rest.split_once('+') {
        Some((pre, build)) => (pre, Some(build)),
        None => (rest, None),
    };
    let pre_ok = match pre {
        "" => true,
        p => p.strip_prefix('-').is_some_and(|p| idents(p, true)),
    };
    pre_ok && build.is_none_or(|b| idents(b, false))
}
