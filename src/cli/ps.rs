//! `ollmlx ps`: the loaded models as Ollama's `NAME  ID  SIZE  PROCESSOR  CONTEXT  UNTIL` table.

use super::format::{human_bytes, human_time, parse_time, table};
use super::list::short_id;
use super::Printer;
use crate::api::ProcessResponse;
use crate::client::Client;
use chrono::{DateTime, Utc};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct PsArgs {}

pub async fn run(_args: PsArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let models = client.ps().await?;
    p.out(render(&models, Utc::now()))?;
    Ok(ExitCode::SUCCESS)
}

/// The table `ollama ps` prints.
pub fn render(ps: &ProcessResponse, now: DateTime<Utc>) -> String {
    let mut rows = vec![["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
        .map(String::from)
        .to_vec()];
    rows.extend(ps.models.iter().map(|m| {
        vec![
            m.name.clone(),
            short_id(&m.digest),
            human_bytes(m.size),
            processor(m.size, m.size_vram),
            m.context_length.to_string(),
            until(&m.expires_at, now),
        ]
    }));
    table(&rows)
}

/// Where the model's memory is: `100% GPU`, `100% CPU` or `48%/52% CPU/GPU`.
pub fn processor(size: u64, size_vram: u64) -> String {
    match () {
        _ if size_vram == 0 => "100% CPU".into(),
        _ if size_vram == size => "100% GPU".into(),
        _ if size_vram > size || size == 0 => "Unknown".into(),
        _ => {
            let cpu = ((size - size_vram) as f64 / size as f64 * 100.0).round() as u64;
            format!("{cpu}%/{}% CPU/GPU", 100 - cpu)
        }
    }
}

/// When the model unloads: `4 minutes from now`, `Forever`, or `Stopping...` once past.
pub fn until(expires_at: &str, now: DateTime<Utc>) -> String {
    match parse_time(expires_at) {
        Some(t) if t < now => "Stopping...".into(),
        t => human_time(t, now, "Never"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ModelDetails, ProcessModel};
    use chrono::TimeZone;

    #[test]
    fn processor_split() {
        assert_eq!(processor(100, 100), "100% GPU");
        assert_eq!(processor(100, 0), "100% CPU");
        assert_eq!(processor(0, 0), "100% CPU");
        assert_eq!(processor(1000, 520), "48%/52% CPU/GPU");
        assert_eq!(processor(100, 200), "Unknown");
    }

    #[test]
    fn renders_ollamas_ps_table() {
        let now = Utc.with_ymd_and_hms(2025, 6, 3, 12, 0, 0).unwrap();
        let m = |name: &str, vram: u64, expires: &str| ProcessModel {
            name: name.into(),
            model: name.into(),
            size: 5_137_025_024,
            digest: "sha256:46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e"
                .into(),
            details: ModelDetails::default(),
            expires_at: expires.into(),
            size_vram: vram,
            context_length: 4096,
            distributed: None,
        };
        let ps = ProcessResponse {
            models: vec![
                m("qwen3:0.6b", 5_137_025_024, "2025-06-03T05:04:59.9-07:00"),
                m("llama3.2:latest", 0, "2318-06-03T12:00:00Z"),
                m("smollm:135m", 2_568_512_512, "2025-06-03T11:59:00Z"),
            ],
        };
        assert_eq!(
            render(&ps, now),
            "NAME               ID              SIZE      PROCESSOR          CONTEXT    UNTIL\n\
             qwen3:0.6b         46e0c10c039e    5.1 GB    100% GPU           4096       4 minutes from now\n\
             llama3.2:latest    46e0c10c039e    5.1 GB    100% CPU           4096       Forever\n\
             smollm:135m        46e0c10c039e    5.1 GB    50%/50% CPU/GPU    4096       Stopping...\n"
        );
    }
}
