//! Prometheus's text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines, then
//! samples `name{label="value",...} value`. Only writing; the tests parse it back.

use super::registry::HistogramSnapshot;
use std::fmt::Write;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition being written.
#[derive(Default)]
pub struct Text(String);

impl Text {
    /// Starts a metric: its help text and type (`counter`, `gauge`, `histogram`).
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample. Label values are escaped; names are the caller's constants.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        write_labels(&mut self.0, labels);
        self.0.push(' ');
        write_value(&mut self.0, value);
        self.0.push('\n');
    }

    /// A histogram's `_bucket` (one per bound, then `+Inf`), `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound, n) in &h.buckets {
            let mut le = String::new();
            write_value(&mut le, *bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, *n as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.0
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// Go's float syntax as Prometheus reads it: integers without a fraction, `+Inf`, `NaN`.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Rust's `Display` never uses an exponent and prints `2` for 2.0: both parse in Go.
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::registry::Histogram;
    use std::time::Duration;

    #[test]
    fn escapes_label_values_and_help() {
        let mut t = Text::default();
        t.header("x_total", "counter", "a \\ b\nc");
        t.sample("x_total", &[("model", "a\"b\\c\nd"), ("s", "200")], 3.0);
        assert_eq!(
            t.finish(),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{model=\"a\\\"b\\\\c\\nd\",s=\"200\"} 3\n"
        );
    }

    #[test]
    fn values_in_go_syntax() {
        let mut s = String::new();
        for v in [0.0, 2.0, 0.25, 1e-7, f64::INFINITY, f64::NAN] {
            write_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 2 0.25 0.0000001 +Inf NaN ");
    }

    #[test]
    fn histogram_lines() {
        let h = Histogram::new(&[0.5, 1.0]);
        h.observe(Duration::from_millis(250));
        h.observe(Duration::from_secs(3));
        let mut t = Text::default();
        t.histogram("lat_seconds", &[("model", "m")], &h.snapshot());
        assert_eq!(
            t.finish(),
            "lat_seconds_bucket{model=\"m\",le=\"0.5\"} 1\n\
             lat_seconds_bucket{model=\"m\",le=\"1\"} 1\n\
             lat_seconds_bucket{model=\"m\",le=\"+Inf\"} 2\n\
             lat_seconds_sum{model=\"m\"} 3.25\n\
             lat_seconds_count{model=\"m\"} 2\n"
        );
    }
}
