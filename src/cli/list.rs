//! `ollmlx list` (alias `ls`): the local models as Ollama's `NAME  ID  SIZE  MODIFIED` table.

use super::format::{human_bytes, human_time, parse_time, table};
use super::Printer;
use crate::api::ListResponse;
use crate::client::Client;
use chrono::{DateTime, Utc};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only show models whose name starts with this (case-insensitive).
    pub prefix: Option<String>,
}

pub async fn run(args: ListArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let models = client.list().await?;
    p.out(render(&models, args.prefix.as_deref(), Utc::now()))?;
    Ok(ExitCode::SUCCESS)
}

/// The table `ollama list` prints, header included even when there are no models.
pub fn render(list: &ListResponse, prefix: Option<&str>, now: DateTime<Utc>) -> String {
    let prefix = prefix.unwrap_or("").to_lowercase();
    let mut rows = vec![["NAME", "ID", "SIZE", "MODIFIED"]
        .map(String::from)
        .to_vec()];
    rows.extend(
        list.models
            .iter()
            .filter(|m| m.name.to_lowercase().starts_with(&prefix))
            .map(|m| {
                vec![
                    m.name.clone(),
                    short_id(&m.digest),
                    human_bytes(m.size),
                    human_time(parse_time(&m.modified_at), now, "Never"),
                ]
            }),
    );
    table(&rows)
}

/// The 12-character ID the CLI shows for a digest (Ollama's `digest[:12]`, minus its panic on
/// short digests and tolerant of a `sha256:` prefix).
pub fn short_id(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ListModel, ModelDetails};
    use chrono::TimeZone;

    fn model(name: &str, size: u64, modified_at: &str) -> ListModel {
        ListModel {
            name: name.into(),
            model: name.into(),
            modified_at: modified_at.into(),
            size,
            digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72".into(),
            details: ModelDetails::default(),
            capabilities: vec![],
        }
    }

    #[test]
    fn renders_ollamas_list_table() {
        let now = Utc.with_ymd_and_hms(2025, 6, 3, 12, 0, 0).unwrap();
        let list = ListResponse {
            models: vec![
                model(
                    "mlx-community/Qwen3-0.6B-4bit:latest",
                    351_000_000,
                    "2025-06-03T11:59:30Z",
                ),
                model(
                    "llama3.2:latest",
                    2_019_393_189,
                    "2025-06-01T05:00:00-07:00",
                ),
                model("smollm:135m", 91_739_413, "2025-06-03T11:59:59.5+00:00"),
            ],
        };
        assert_eq!(
            render(&list, None, now),
            "NAME                                    ID              SIZE      MODIFIED\n\
             mlx-community/Qwen3-0.6B-4bit:latest    a80c4f17acd5    351 MB    30 seconds ago\n\
             llama3.2:latest                         a80c4f17acd5    2.0 GB    2 days ago\n\
             smollm:135m                             a80c4f17acd5    91 MB     Less than a second ago\n"
        );
        assert_eq!(
            render(&list, Some("LLAMA"), now),
            "NAME               ID              SIZE      MODIFIED\n\
             llama3.2:latest    a80c4f17acd5    2.0 GB    2 days ago\n"
        );
        assert_eq!(
            render(&ListResponse { models: vec![] }, None, now),
            "NAME    ID    SIZE    MODIFIED\n"
        );
    }

    #[test]
    fn short_ids() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
