//! Human-readable formatting for the CLI, byte-for-byte what the `ollama` CLI prints: Ollama's
//! `format.HumanBytes`, `format.HumanNumber`, `format.HumanTime`, Go's `time.Duration.String()`
//! and `%g`, the `--verbose` statistics block, and the borderless tables of `list`, `ps` and `show`
//! (olekukonko/tablewriter with no border and four-space padding).
//!
//! Everything here is pure: the current time is passed in, so the tests pin exact strings.

use crate::api::Metrics;
use chrono::{DateTime, Datelike, FixedOffset, Utc};

/// Ollama's `format.HumanBytes`: decimal units, one decimal only below 10 and only when the value
/// is not whole (`4.7 GB`, `2 GB`, `19 GB`, `999 KB`).
pub fn human_bytes(b: u64) -> String {
    const KB: u64 = 1000;
    const MB: u64 = KB * 1000;
    const GB: u64 = MB * 1000;
    const TB: u64 = GB * 1000;
    let (value, unit) = match b {
        b if b >= TB => (b as f64 / TB as f64, "TB"),
        b if b >= GB => (b as f64 / GB as f64, "GB"),
        b if b >= MB => (b as f64 / MB as f64, "MB"),
        b if b >= KB => (b as f64 / KB as f64, "KB"),
        b => return format!("{b} B"),
    };
    // Go: >= 10 prints int(value) (truncated); a fraction below 10 prints %.1f.
    if value >= 10.0 || value == value.trunc() {
        format!("{} {unit}", value as u64)
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Ollama's `format.HumanNumber`, used for parameter counts: `8B`, `3.2B`, `137M`, `22.71M`, `35K`.
pub fn human_number(n: u64) -> String {
    const THOUSAND: u64 = 1000;
    const MILLION: u64 = THOUSAND * 1000;
    const BILLION: u64 = MILLION * 1000;
    match n {
        n if n >= BILLION => {
            let v = n as f64 / BILLION as f64;
            if v == v.floor() {
                format!("{v:.0}B")
            } else {
                format!("{v:.1}B")
            }
        }
        n if n >= MILLION => {
            let v = n as f64 / MILLION as f64;
            if v == v.floor() {
                format!("{v:.0}M")
            } else {
                format!("{v:.2}M")
            }
        }
        n if n >= THOUSAND => format!("{:.0}K", n as f64 / THOUSAND as f64),
        n => n.to_string(),
    }
}

/// Ollama's `humanDuration`: the approximate length of a non-negative span of nanoseconds.
fn human_duration(ns: i128) -> String {
    let secs = ns as f64 / 1e9;
    let seconds = secs as i64; // Go's int() truncates
    match seconds {
        s if s < 1 => return "Less than a second".into(),
        1 => return "1 second".into(),
        s if s < 60 => return format!("{s} seconds"),
        _ => {}
    }
    let minutes = (secs / 60.0) as i64;
    match minutes {
        1 => return "About a minute".into(),
        m if m < 60 => return format!("{m} minutes"),
        _ => {}
    }
    let hours = (secs / 3600.0).round() as i64; // math.Round: half away from zero, as f64::round
    match hours {
        1 => "About an hour".into(),
        h if h < 48 => format!("{h} hours"),
        h if h < 24 * 7 * 2 => format!("{} days", h / 24),
        h if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", (secs / 3600.0) as i64 / 24 / 365),
    }
}

/// Ollama's `format.HumanTime`: `2 days ago`, `4 minutes from now`, `Forever` for anything more
/// than 20 years ahead (a negative keep-alive expires in the year 2318), `zero` for Go's zero time.
pub fn human_time(t: Option<DateTime<FixedOffset>>, now: DateTime<Utc>, zero: &str) -> String {
    let Some(t) = t.filter(|t| !is_go_zero(t)) else {
        return zero.to_owned();
    };
    let delta = now.signed_duration_since(t);
    let ns = delta
        .num_nanoseconds()
        .map(i128::from)
        // Out of i64 range (about 292 years): microseconds are precise enough.
        .unwrap_or_else(|| i128::from(delta.num_microseconds().unwrap_or(i64::MAX)) * 1000);
    let hours = (ns as f64 / 3.6e12) as i64;
    if hours / 24 / 365 < -20 {
        "Forever".into()
    } else if ns < 0 {
        format!("{} from now", human_duration(-ns))
    } else {
        format!("{} ago", human_duration(ns))
    }
}

/// Go's zero `time.Time` marshals as `0001-01-01T00:00:00Z`.
fn is_go_zero(t: &DateTime<FixedOffset>) -> bool {
    t.year() <= 1
}

/// Parses a Go `time.Time` as it appears on the wire (RFC 3339, any offset).
pub fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// Go's `time.Duration.String()` for a non-negative number of nanoseconds: `0s`, `850ns`,
/// `1.5µs`, `56ms`, `1.234567891s`, `2m0.5s`, `1h0m0s`.
pub fn go_duration(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match ns {
        0 => "0s".into(),
        n if n < US => format!("{n}ns"),
        n if n < MS => format!("{}µs", fixed_point(n, 3)),
        n if n < S => format!("{}ms", fixed_point(n, 6)),
        n => {
            let secs = fixed_point(n % (60 * S), 9);
            let total_min = n / (60 * S);
            let (h, m) = (total_min / 60, total_min % 60);
            if h > 0 {
                format!("{h}h{m}m{secs}s")
            } else if m > 0 {
                format!("{m}m{secs}s")
            } else {
                format!("{secs}s")
            }
        }
    }
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare point) dropped, as Go's `fmtFrac`.
fn fixed_point(v: u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let (int, frac) = (v / div, v % div);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// Go's `%g` (and `%v`) for a float64: the shortest representation, in exponent form when the
/// exponent is below -4 or at least 6 (`131072`, `1e+06`, `3.212749888e+09`, `1.5e-07`).
pub fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's shortest formatting does.
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// The `--verbose` statistics Ollama prints to stderr after an answer (`api.Metrics.Summary`).
/// A zero metric leaves its line out.
pub fn summary(m: &Metrics) -> String {
    let mut s = String::new();
    let rate = |count: u64, ns: u64| count as f64 / (ns as f64 / 1e9);
    if m.total_duration > 0 {
        s += &format!("total duration:       {}\n", go_duration(m.total_duration));
    }
    if m.load_duration > 0 {
        s += &format!("load duration:        {}\n", go_duration(m.load_duration));
    }
    if m.prompt_eval_count > 0 {
        s += &format!("prompt eval count:    {} token(s)\n", m.prompt_eval_count);
    }
    if m.prompt_eval_duration > 0 {
        s += &format!(
            "prompt eval duration: {}\n",
            go_duration(m.prompt_eval_duration)
        );
        s += &format!(
            "prompt eval rate:     {:.2} tokens/s\n",
            rate(m.prompt_eval_count, m.prompt_eval_duration)
        );
    }
    if m.eval_count > 0 {
        s += &format!("eval count:           {} token(s)\n", m.eval_count);
    }
    if m.eval_duration > 0 {
        s += &format!("eval duration:        {}\n", go_duration(m.eval_duration));
        s += &format!(
            "eval rate:            {:.2} tokens/s\n",
            rate(m.eval_count, m.eval_duration)
        );
    }
    s
}

/// The gap between columns: Ollama's tables use `SetTablePadding("    ")`.
pub const COLUMN_GAP: &str = "    ";

/// Renders rows as Ollama's borderless tables do: every column left-aligned and padded to its
/// widest cell, columns separated by [`COLUMN_GAP`]. Trailing blanks are trimmed (tablewriter
/// leaves some; nothing that parses the output depends on them). Each line ends in `\n`.
pub fn table<S: AsRef<str>>(rows: &[Vec<S>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell.as_ref()));
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let cell = cell.as_ref();
            line.push_str(cell);
            if i + 1 < columns {
                line.push_str(&" ".repeat(widths[i] - width(cell)));
                line.push_str(COLUMN_GAP);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Display width in terminal columns (one per character; model names are ASCII in practice).
fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn human_bytes_matches_ollama() {
        // Cases from Ollama's format/bytes_test.go, plus typical model sizes.
        let cases: &[(u64, &str)] = &[
            (0, "0 B"),
            (1, "1 B"),
            (999, "999 B"),
            (1000, "1 KB"),
            (1500, "1.5 KB"),
            (999_999, "999 KB"),
            (1_000_000, "1 MB"),
            (1_500_000, "1.5 MB"),
            (999_999_999, "999 MB"),
            (1_000_000_000, "1 GB"),
            (1_500_000_000, "1.5 GB"),
            (999_999_999_999, "999 GB"),
            (1_000_000_000_000, "1 TB"),
            (1_500_000_000_000, "1.5 TB"),
            (1_999_999_999_999, "2.0 TB"),
            (1234, "1.2 KB"),
            (1_234_567, "1.2 MB"),
            (1_234_567_890, "1.2 GB"),
            (10_500, "10 KB"),
            (4_661_224_676, "4.7 GB"),
            (2_019_393_189, "2.0 GB"),
            (2_100_000, "2.1 MB"),
            (19_500_000_000, "19 GB"),
        ];
        for &(b, want) in cases {
            assert_eq!(human_bytes(b), want, "human_bytes({b})");
        }
    }

    #[test]
    fn human_number_matches_ollama() {
        // Cases from Ollama's format/format_test.go (TestHumanNumber) and the API docs.
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (999, "999"),
            (1000, "1K"),
            (35_000, "35K"),
            (1_000_000, "1M"),
            (1_050_000, "1.05M"),
            (22_713_216, "22.71M"),
            (125_000_000, "125M"),
            (137_000_000, "137M"),
            (500_500_000, "500.50M"),
            (500_550_000, "500.55M"),
            (1_000_000_000, "1B"),
            (2_800_000_000, "2.8B"),
            (2_850_000_000, "2.9B"),
            (3_212_749_888, "3.2B"),
            (8_000_000_000, "8B"),
            (1_000_000_000_000, "1000B"),
        ];
        for &(n, want) in cases {
            assert_eq!(human_number(n), want, "human_number({n})");
        }
    }

    fn at(now: DateTime<Utc>, secs: i64) -> Option<DateTime<FixedOffset>> {
        Some((now + chrono::Duration::seconds(secs)).fixed_offset())
    }

    #[test]
    fn human_time_matches_ollama() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let ms = |n: i64| Some((now + chrono::Duration::milliseconds(n)).fixed_offset());
        let cases: &[(Option<DateTime<FixedOffset>>, &str)] = &[
            (None, "Never"),
            (parse_time("0001-01-01T00:00:00Z"), "Never"),
            (at(now, 0), "Less than a second ago"),
            (ms(800), "Less than a second from now"),
            (at(now, -1), "1 second ago"),
            (at(now, -59), "59 seconds ago"),
            (at(now, -60), "About a minute ago"),
            (at(now, -119), "About a minute ago"),
            (at(now, -120), "2 minutes ago"),
            (ms(5 * 60_000 - 10), "4 minutes from now"),
            (at(now, -59 * 60), "59 minutes ago"),
            (at(now, -3600), "About an hour ago"),
            (at(now, -90 * 60), "2 hours ago"),
            (at(now, -47 * 3600), "47 hours ago"),
            (at(now, -48 * 3600), "2 days ago"),
            (at(now, 48 * 3600), "2 days from now"),
            (at(now, -14 * 86400), "2 weeks ago"),
            (at(now, -60 * 86400), "2 months ago"),
            (at(now, -730 * 86400), "2 years ago"),
            (at(now, 200 * 365 * 86400), "Forever"),
            (parse_time("2318-01-01T00:00:00-08:00"), "Forever"),
        ];
        for (t, want) in cases {
            assert_eq!(human_time(*t, now, "Never"), *want, "human_time({t:?})");
        }
    }

    #[test]
    fn go_duration_strings() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (56_000_000, "56ms"),
            (56_789_000, "56.789ms"),
            (1_234_000_000, "1.234s"),
            (1_234_567_891, "1.234567891s"),
            (60_000_000_000, "1m0s"),
            (62_500_000_000, "1m2.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
        ];
        for &(ns, want) in cases {
            assert_eq!(go_duration(ns), want, "go_duration({ns})");
        }
    }

    #[test]
    fn go_g_strings() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (131072.0, "131072"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (3_212_749_888.0, "3.212749888e+09"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
        ];
        for &(v, want) in cases {
            assert_eq!(go_g(v), want, "go_g({v})");
        }
    }

    #[test]
    fn verbose_summary_block() {
        let m = Metrics {
            total_duration: 1_234_567_891,
            load_duration: 56_000_000,
            prompt_eval_count: 26,
            prompt_eval_duration: 130_000_000,
            eval_count: 298,
            eval_duration: 4_799_921_000,
        };
        assert_eq!(
            summary(&m),
            "total duration:       1.234567891s\n\
             load duration:        56ms\n\
             prompt eval count:    26 token(s)\n\
             prompt eval duration: 130ms\n\
             prompt eval rate:     200.00 tokens/s\n\
             eval count:           298 token(s)\n\
             eval duration:        4.799921s\n\
             eval rate:            62.08 tokens/s\n"
        );
        // Zero metrics are left out.
        let m = Metrics {
            eval_count: 3,
            ..Default::default()
        };
        assert_eq!(summary(&m), "eval count:           3 token(s)\n");
        assert_eq!(summary(&Metrics::default()), "");
    }

    #[test]
    fn table_aligns_columns_with_four_spaces() {
        let rows = vec![
            vec!["NAME", "ID", "SIZE", "MODIFIED"],
            vec!["llama3.2:latest", "a80c4f17acd5", "2.0 GB", "2 days ago"],
            vec!["qwen:0.5b", "b5dc5e784f2a", "394 MB", "About a minute ago"],
        ];
        assert_eq!(
            table(&rows),
            "NAME               ID              SIZE      MODIFIED\n\
             llama3.2:latest    a80c4f17acd5    2.0 GB    2 days ago\n\
             qwen:0.5b          b5dc5e784f2a    394 MB    About a minute ago\n"
        );
        // A leading empty column indents by the gap, as `ollama show` sections do.
        let rows = vec![
            vec!["", "architecture", "llama"],
            vec!["", "parameters", "3.2B"],
        ];
        assert_eq!(
            table(&rows),
            "    architecture    llama\n    parameters      3.2B\n"
        );
        assert_eq!(table::<&str>(&[]), "");
    }
}
