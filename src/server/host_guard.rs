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

pub async fn layer(State(guard): State<HostGuard>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if guard.allows(host) {
        next.run(req).await
    } else {
        tracing::warn!(
            host,
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
}
