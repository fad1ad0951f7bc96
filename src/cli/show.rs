//! `ollmlx show MODEL`: model details as `ollama show` prints them (the Model, Capabilities,
//! Parameters, Metadata, System and License sections), or one raw field with a flag.

use super::format::{go_g, human_number, table};
use super::Printer;
use crate::api::{ShowRequest, ShowResponse};
use crate::client::Client;
use clap::Args;
use serde_json::Value;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The model to describe.
    pub model: String,
    /// Show license of a model.
    #[arg(long)]
    pub license: bool,
    /// Show Modelfile of a model.
    #[arg(long)]
    pub modelfile: bool,
    /// Show parameters of a model.
    #[arg(long)]
    pub parameters: bool,
    /// Show template of a model.
    #[arg(long)]
    pub template: bool,
    /// Show system message of a model.
    #[arg(long)]
    pub system: bool,
    /// Show detailed model information.
    #[arg(short, long)]
    pub verbose: bool,
}

pub async fn run(args: ShowArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let picked = [
        args.license,
        args.modelfile,
        args.parameters,
        args.template,
        args.system,
    ];
    if picked.iter().filter(|&&b| b).count() > 1 {
        anyhow::bail!(
            "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified"
        );
    }
    let req = ShowRequest {
        model: args.model.clone(),
        verbose: args.verbose,
        ..Default::default()
    };
    let resp = client.show(&req).await?;
    let text = match () {
        _ if args.license => line(&resp.license),
        _ if args.modelfile => line(&resp.modelfile),
        _ if args.parameters => line(&resp.parameters),
        _ if args.system => line(&resp.system),
        _ if args.template => line(&resp.template),
        _ => render_info(&resp, args.verbose),
    };
    p.out(text)?;
    Ok(ExitCode::SUCCESS)
}

/// A raw field, ending in exactly one newline unless it already ends in one.
fn line(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n")
    }
}

/// The sections `ollama show` prints without flags (`showInfo` in Ollama's `cmd/cmd.go`).
pub fn render_info(resp: &ShowResponse, verbose: bool) -> String {
    let mut out = String::new();
    let mut section = |header: &str, rows: Vec<Vec<String>>| {
        out.push_str("  ");
        out.push_str(header);
        out.push('\n');
        out.push_str(&table(&rows));
        out.push('\n');
    };
    let row = |cells: &[&str]| -> Vec<String> {
        std::iter::once("")
            .chain(cells.iter().copied())
            .map(String::from)
            .collect()
    };

    let info = &resp.model_info;
    let arch = info
        .get("general.architecture")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut model = Vec::new();
    if !arch.is_empty() {
        model.push(row(&["architecture", arch]));
    }
    let params = if !resp.details.parameter_size.is_empty() {
        resp.details.parameter_size.clone()
    } else {
        info.get("general.parameter_count")
            .and_then(Value::as_f64)
            .map(|n| human_number(n as u64))
            .unwrap_or_default()
    };
    if !params.is_empty() {
        model.push(row(&["parameters", &params]));
    }
    for (key, label) in [
        ("context_length", "context length"),
        ("embedding_length", "embedding length"),
    ] {
        if let Some(n) = info.get(&format!("{arch}.{key}")).and_then(Value::as_f64) {
            model.push(row(&[label, &n.to_string()]));
        }
    }
    model.push(row(&["quantization", &resp.details.quantization_level]));
    section("Model", model);

    if !resp.capabilities.is_empty() {
        section(
            "Capabilities",
            resp.capabilities.iter().map(|c| row(&[c])).collect(),
        );
    }
    if !resp.parameters.is_empty() {
        let rows = resp
            .parameters
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| row(&l.split_whitespace().collect::<Vec<_>>()))
            .collect();
        section("Parameters", rows);
    }
    if verbose {
        let mut keys: Vec<&String> = info.keys().collect();
        keys.sort();
        let rows = keys
            .into_iter()
            .map(|k| row(&[k, &metadata_value(&info[k])]))
            .collect();
        section("Metadata", rows);
    }
    if !resp.system.is_empty() {
        section(
            "System",
            head(&resp.system, 2).iter().map(|l| row(&[l])).collect(),
        );
    }
    if !resp.license.is_empty() {
        section(
            "License",
            head(&resp.license, 2).iter().map(|l| row(&[l])).collect(),
        );
    }
    out
}

/// The first `n` non-blank lines, trimmed, then `...` if there were more. Lines longer than the
/// 100-column cell Ollama gives these sections are wrapped at spaces.
fn head(s: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut rows: Vec<String> = lines.iter().take(n).flat_map(|l| wrap(l, 100)).collect();
    if lines.len() > n {
        rows.push("...".into());
    }
    rows
}

/// Greedy word wrap at `width` columns; a word longer than the width stays whole.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

/// A `model_info` value as the Metadata section shows it (Go's `%t`, `%g`, `%v`; long arrays are
/// cut to about ten columns, `[a b ...+N more]`).
fn metadata_value(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_g(n.as_f64().unwrap_or(0.0)),
        Value::Array(items) => {
            const TARGET_WIDTH: usize = 10;
            let mut shown = 0;
            let mut total = 1; // the opening bracket
            for (i, item) in items.iter().enumerate() {
                let width = go_v(item).chars().count() + if i > 0 { 2 } else { 0 };
                if total + width > TARGET_WIDTH && i > 0 {
                    break;
                }
                total += width;
                shown += 1;
            }
            if shown < items.len() {
                let head = go_v(&Value::Array(items[..shown].to_vec()));
                format!(
                    "{} ...+{} more]",
                    head.trim_end_matches(']'),
                    items.len() - shown
                )
            } else {
                go_v(v)
            }
        }
        Value::Object(_) => "map[string]interface {}".into(),
        Value::Null => "<nil>".into(),
    }
}

/// Go's `%v` for a decoded JSON value.
fn go_v(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_g(n.as_f64().unwrap_or(0.0)),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(go_v).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_v(&map[*k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        Value::Null => "<nil>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ModelDetails;
    use serde_json::json;

    fn response() -> ShowResponse {
        ShowResponse {
            license: "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\n\nLlama 3.2 Version Release Date: September 25, 2024\nMore terms"
                .into(),
            parameters: "stop                           \"<|start_header_id|>\"\nstop                           \"<|eot_id|>\"\ntemperature                    0.6"
                .into(),
            details: ModelDetails { quantization_level: "Q4_K_M".into(), ..Default::default() },
            model_info: json!({
                "general.architecture": "llama",
                "general.parameter_count": 3_212_749_888u64,
                "llama.context_length": 131072,
                "llama.embedding_length": 3072,
                "tokenizer.ggml.tokens": ["a", "b", "c", "d", "e", "f"],
            })
            .as_object()
            .unwrap()
            .clone(),
            capabilities: vec!["completion".into(), "tools".into()],
            ..Default::default()
        }
    }

    #[test]
    fn renders_ollamas_show_sections() {
        assert_eq!(
            render_info(&response(), false),
            "  Model\n\
             \x20   architecture        llama\n\
             \x20   parameters          3.2B\n\
             \x20   context length      131072\n\
             \x20   embedding length    3072\n\
             \x20   quantization        Q4_K_M\n\
             \n\
             \x20 Capabilities\n\
             \x20   completion\n\
             \x20   tools\n\
             \n\
             \x20 Parameters\n\
             \x20   stop           \"<|start_header_id|>\"\n\
             \x20   stop           \"<|eot_id|>\"\n\
             \x20   temperature    0.6\n\
             \n\
             \x20 License\n\
             \x20   LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\n\
             \x20   Llama 3.2 Version Release Date: September 25, 2024\n\
             \x20   ...\n\
             \n"
        );
    }

    #[test]
    fn parameter_size_from_details_wins_and_empty_info_still_renders() {
        let mut resp = response();
        resp.details.parameter_size = "3.21B".into();
        assert!(render_info(&resp, false).contains("    parameters          3.21B\n"));

        let bare = ShowResponse {
            details: ModelDetails {
                quantization_level: "4bit".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            render_info(&bare, false),
            "  Model\n    quantization    4bit\n\n"
        );
        // A small count goes through HumanNumber: 1.05M.
        let mut small = bare.clone();
        small.model_info = json!({"general.parameter_count": 1_050_000})
            .as_object()
            .unwrap()
            .clone();
        assert!(render_info(&small, false).contains("    parameters      1.05M\n"));
    }

    #[test]
    fn verbose_adds_metadata_like_go() {
        let out = render_info(&response(), true);
        assert!(out.contains(
            "  Metadata\n\
             \x20   general.architecture       llama\n\
             \x20   general.parameter_count    3.212749888e+09\n\
             \x20   llama.context_length       131072\n\
             \x20   llama.embedding_length     3072\n\
             \x20   tokenizer.ggml.tokens      [a b c ...+3 more]\n\n"
        ));
        assert_eq!(metadata_value(&json!([1, 2])), "[1 2]");
        assert_eq!(metadata_value(&json!(true)), "true");
        assert_eq!(metadata_value(&json!(null)), "<nil>");
    }

    #[test]
    fn long_license_lines_wrap_at_100_columns() {
        let long = "word ".repeat(30);
        let rows = head(&long, 2);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.chars().count() <= 100));
        assert_eq!(rows.join(" "), long.trim());
    }
}
