//! Registry bearer-token auth (Docker's token flow): a request answered 401 with
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` is sent again with a token from
//! `GET realm?service=…&scope=…` (anonymous; a registry that wants credentials for it needs
//! more than ollmlx has: ollama.com signs with each machine's ed25519 key, which ollmlx does
//! not implement). Tokens are kept per scope for the rest of the push or pull.

use std::collections::HashMap;
use std::sync::Mutex;

/// A challenge's parameters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Challenge {
    pub realm: String,
    pub service: String,
    pub scope: String,
}

/// Parses `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim().strip_prefix("Bearer ")?;
    let mut c = Challenge::default();
    for part in split_params(rest) {
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "realm" => c.realm = v,
            "service" => c.service = v,
            "scope" => c.scope = v,
            _ => {}
        }
    }
    (!c.realm.is_empty()).then_some(c)
}

/// Splits on commas outside quotes (a scope can list actions: `…:push,pull`).
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Tokens obtained so far, by realm and scope.
#[derive(Default)]
pub struct Tokens {
    by_scope: Mutex<HashMap<(String, String), String>>,
}

impl Tokens {
    /// Sends the request `make()` builds; on a bearer challenge, fetches a token and sends it
    /// again with it. Any other answer is returned as it is.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        make: impl Fn() -> reqwest::RequestBuilder,
        scope: &str,
    ) -> Result<reqwest::Response, String> {
        let cached = self
            .by_scope
            .lock()
            .unwrap()
            .iter()
            .find(|((_, s), _)| s == scope)
            .map(|(_, t)| t.clone());
        let first = match &cached {
            Some(t) => make().bearer_auth(t),
            None => make(),
        };
        let resp = first.send().await.map_err(|e| e.to_string())?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(mut challenge) = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
        else {
            return Ok(resp);
        };
        if challenge.scope.is_empty() {
            challenge.scope = scope.to_owned();
        }
        let token = fetch_token(http, &challenge).await?;
        self.by_scope
            .lock()
            .unwrap()
            .insert((challenge.realm.clone(), scope.to_owned()), token.clone());
        make()
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())
    }
}

/// `GET realm?service=…&scope=…` → `{"token": …}` (or `access_token`).
async fn fetch_token(http: &reqwest::Client, c: &Challenge) -> Result<String, String> {
    let resp = http
        .get(&c.realm)
        .query(&[("service", &c.service), ("scope", &c.scope)])
        .send()
        .await
        .map_err(|e| format!("getting a registry token from {}: {e}", c.realm))?;
    if !resp.status().is_success() {
        return Err(format!(
            "the registry's token service {} answered {}: this registry needs credentials ollmlx cannot give (ollama.com signs with Ollama's own key)",
            c.realm,
            resp.status()
        ));
    }
    let v: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("the registry's token answer is not JSON: {e}"))?;
    v.get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "the registry's token answer has no token".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_listed_actions() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:me/tiny:push,pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.example/token");
        assert_eq!(c.service, "registry.example");
        assert_eq!(c.scope, "repository:me/tiny:push,pull");
        assert!(parse_challenge("Basic realm=\"x\"").is_none());
        assert!(parse_challenge("Bearer service=\"x\"").is_none());
    }
}
