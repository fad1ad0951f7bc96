//! The Host-header guard against DNS rebinding (Ollama's `allowedHostsMiddleware`). When the server
//! listens on loopback, a web page on another origin could rebind its own name to 127.0.0.1 and
//! reach us; its requests still carry its own name in `Host`. So only local names and addresses
//! are accepted: none, `localhost`, this machine's hostname, `*.localhost`, `*.local`,
//! `*.internal`, and loopback, private or unspecified IPs. Anything else gets 403 with no body.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// Whether the guard applies (the listener is on loopback) and this machine's hostname.
#[derive(Debug, Clone)]
pub struct HostGuard {
    pub enabled: bool,
    pub hostname: String,
}

impl HostGuard {
    pub fn new(listen_loopback: bool) -> HostGuard {
        HostGuard {
            enabled: listen_loopback,
            hostname: hostname().unwrap_or_default(),
        }
    }

    pub fn allows(&self, host_header: &str) -> bool {
        if !self.enabled || host_header.is_empty() {
            return true;
        }
        let host = strip_port(host_header).to_ascii_lowercase();
        if host == "localhost"
            || (!self.hostname.is_empty() && host == self.hostname.to_ascii_lowercase())
        {
            return true;
        }
        if [".localhost", ".local", ".internal"]
            .iter()
            .any(|s| host.ends_with(s))
        {
            return true;
        }
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_unspecified() || ip.is_link_local()
            }
            Ok(IpAddr::V6(ip)) => {
                ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
            }
            Err(_) => false,
        }
    }
}

/// `host:port` -> `host`, keeping bracketed IPv6 intact.
fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h.split_once(']').map_or(h, |(a, _)| &h[..a.len() + 1]);
    }
    match h.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => a,
        _ => h,
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

/// Whether a request with this `Host` header (absent: `None`) may pass. A header that is not
/// visible ASCII cannot be checked, so it is refused while the guard is on (it used to read as
/// "no Host" and pass).
pub fn admits(guard: &HostGuard, host: Option<&header::HeaderValue>) -> bool {
    match host.map(|h| h.to_str()) {
        None => guard.allows(""),
        Some(Ok(name)) => guard.allows(name),
        Some(Err(_)) => !guard.enabled,
    }
}

pub async fn layer(State(guard): State<HostGuard>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST);
    if admits(&guard, host) {
        next.run(req).await
    } else {
        let shown = host.map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
        tracing::warn!(
            host = shown.as_deref().unwrap_or(""),
            "refused a request for a non-local Host (DNS rebinding guard)"
        );
        (StatusCode::FORBIDDEN, Body::empty()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_and_addresses_only() {
        let g = HostGuard {
            enabled: true,
            hostname: "mybox".into(),
        };
        for ok in [
            "",
            "localhost",
            "localhost:11434",
            "127.0.0.1:11434",
            "[::1]:11434",
            "mybox",
            "MyBox:80",
            "foo.localhost",
            "printer.local",
            "svc.internal",
            "192.168.1.5",
            "10.0.0.2:11434",
            "0.0.0.0",
        ] {
            assert!(g.allows(ok), "{ok} should be allowed");
        }
        for bad in [
            "evil.example",
            "evil.example:11434",
            "8.8.8.8",
            "localhost.evil.example",
        ] {
            assert!(!g.allows(bad), "{bad} should be refused");
        }
        assert!(HostGuard {
            enabled: false,
            hostname: String::new()
        }
        .allows("evil.example"));
    }

    #[test]
    fn a_host_that_is_not_ascii_is_refused_not_waved_through() {
        let on = HostGuard {
            enabled: true,
            hostname: "mybox".into(),
        };
        let odd = header::HeaderValue::from_bytes(b"evil\xc3\xa9.example").unwrap();
        assert!(
            odd.to_str().is_err(),
            "the case under test: not visible ASCII"
        );
        assert!(!admits(&on, Some(&odd)));
        assert!(
            admits(&on, None),
            "no Host at all is still allowed, as in Ollama"
        );
        assert!(admits(
            &on,
            Some(&header::HeaderValue::from_static("localhost"))
        ));
        let off = HostGuard {
            enabled: false,
            hostname: String::new(),
        };
        assert!(
            admits(&off, Some(&odd)),
            "not listening on loopback: no guard"
        );
    }
}
