//! Timestamps the way Go's `time.Time` marshals them: RFC 3339 with nanoseconds, trailing
//! fractional zeros trimmed (`2024-12-06T00:48:09.983619Z`). Clients parse these with Go's
//! `RFC3339Nano`, pydantic and `Date`; all of them accept this exact form.

use chrono::{DateTime, Local, SecondsFormat, TimeZone, Utc};

/// `created_at` of generate and chat chunks: now, in UTC, ending in `Z`.
pub fn now_utc() -> String {
    format_go(Utc::now())
}

/// A timestamp in local time with its offset, as Ollama shows `modified_at` and `expires_at`.
pub fn local(t: std::time::SystemTime) -> String {
    format_go(DateTime::<Local>::from(t))
}

/// Formats like Go: nanoseconds with the trailing zeros trimmed, `Z` for UTC.
pub fn format_go<Tz: TimeZone>(t: DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // Split "....ss.nnnnnnnnn<offset>" and trim the zeros of the fraction.
    let Some(dot) = s.find('.') else { return s };
    let frac_end = s[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| dot + 1 + i)
        .unwrap_or(s.len());
    let frac = s[dot + 1..frac_end].trim_end_matches('0');
    if frac.is_empty() {
        format!("{}{}", &s[..dot], &s[frac_end..])
    } else {
        format!("{}.{}{}", &s[..dot], frac, &s[frac_end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn trims_fraction_like_go() {
        let t = NaiveDate::from_ymd_opt(2024, 12, 6)
            .unwrap()
            .and_hms_nano_opt(0, 48, 9, 983_619_000)
            .unwrap()
            .and_utc();
        assert_eq!(format_go(t), "2024-12-06T00:48:09.983619Z");
        let whole = NaiveDate::from_ymd_opt(2024, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        assert_eq!(format_go(whole), "2024-01-02T03:04:05Z");
    }
}
