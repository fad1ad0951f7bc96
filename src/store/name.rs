//! Model names: Ollama's `[host/][namespace/]model[:tag]` grammar (`types/model/name.go`).
//!
//! A Hugging Face repo id `org/repo` is a valid Ollama name (namespace `org`, model `repo`), so an
//! MLX model is addressed by its repo id, with or without a tag, and optionally with the `hf.co/`
//! host prefix that Ollama uses for Hugging Face models.

use std::fmt;

pub const DEFAULT_HOST: &str = "registry.ollama.ai";
pub const DEFAULT_NAMESPACE: &str = "library";
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, complete model name (defaults filled in). Case is kept as given; comparisons that
/// need Ollama's case-insensitivity use [`ModelName::matches`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model name")]
pub struct InvalidName;

impl ModelName {
    /// Parses a name. Empty parts, bad characters or over-long parts are invalid.
    pub fn parse(raw: &str) -> Result<ModelName, InvalidName> {
        let s = raw.trim();
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        // The tag follows the last ':' that comes after the last '/'.
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match s[last_slash..].rfind(':') {
            Some(i) => (&s[..last_slash + i], Some(&s[last_slash + i + 1..])),
            None => (s, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [m] => (None, None, *m),
            [n, m] => (None, Some(*n), *m),
            [h, n, m] => (Some(*h), Some(*n), *m),
            _ => return Err(InvalidName),
        };
        let name = ModelName {
            host: host.unwrap_or(DEFAULT_HOST).to_owned(),
            namespace: namespace.unwrap_or(DEFAULT_NAMESPACE).to_owned(),
            model: model.to_owned(),
            tag: tag.unwrap_or(DEFAULT_TAG).to_owned(),
        };
        let ok = valid_part(&name.host, 350, "_-.:")
            && valid_part(&name.namespace, 80, "_-")
            && valid_part(&name.model, 96, "_-.")
            && valid_part(&name.tag, 80, "_-.");
        if ok {
            Ok(name)
        } else {
            Err(InvalidName)
        }
    }

    /// The shortest unambiguous form, always with the tag: `model:tag`, `ns/model:tag`, or
    /// `host/ns/model:tag` (Ollama's `DisplayShortest`).
    pub fn display_shortest(&self) -> String {
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            format!(
                "{}/{}/{}:{}",
                self.host, self.namespace, self.model, self.tag
            )
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            format!("{}/{}:{}", self.namespace, self.model, self.tag)
        } else {
            format!("{}:{}", self.model, self.tag)
        }
    }

    /// Whether this name can refer to a Hugging Face repo: the default host (a bare `org/repo`)
    /// or Hugging Face's own hosts.
    pub fn is_hf_addressable(&self) -> bool {
        let h = self.host.to_ascii_lowercase();
        (h == DEFAULT_HOST && !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE))
            || h == "hf.co"
            || h == "huggingface.co"
    }

    /// Case-insensitive equality of every part.
    pub fn matches(&self, other: &ModelName) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.model.eq_ignore_ascii_case(&other.model)
            && self.tag.eq_ignore_ascii_case(&other.tag)
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_shortest())
    }
}

/// Every part starts with a letter, digit or `_`, and has only letters, digits and `extra`.
fn valid_part(s: &str, max: usize, extra: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    s.len() <= max && chars.all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ModelName {
        ModelName::parse(s).unwrap_or_else(|_| panic!("{s} should parse"))
    }

    #[test]
    fn parses_ollama_forms() {
        let n = p("llama3.2");
        assert_eq!(
            (n.host.as_str(), n.namespace.as_str()),
            (DEFAULT_HOST, DEFAULT_NAMESPACE)
        );
        assert_eq!((n.model.as_str(), n.tag.as_str()), ("llama3.2", "latest"));
        assert_eq!(p("llama3.2:1b").tag, "1b");
        assert_eq!(p("hf.co/bartowski/X-GGUF:Q4_K_M").host, "hf.co");
        assert_eq!(p("https://registry.ollama.ai/library/x:y").model, "x");
        assert_eq!(p("localhost:5000/ns/m:t").host, "localhost:5000");
    }

    #[test]
    fn hf_repo_ids_are_names() {
        let n = p("mlx-community/Llama-3.2-1B-Instruct-4bit");
        assert_eq!(n.namespace, "mlx-community");
        assert_eq!(n.model, "Llama-3.2-1B-Instruct-4bit");
        assert_eq!(
            n.display_shortest(),
            "mlx-community/Llama-3.2-1B-Instruct-4bit:latest"
        );
        assert!(n.is_hf_addressable());
        assert!(p("hf.co/org/repo").is_hf_addressable());
        assert!(!p("llama3").is_hf_addressable());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "foo:",
            ":tag",
            "a/b/c/d",
            "-x",
            "ns.with.dot/m",
            "a b",
            "x/",
            "/x",
        ] {
            assert!(ModelName::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn display_shortest_drops_defaults_only() {
        assert_eq!(p("library/llama3").display_shortest(), "llama3:latest");
        assert_eq!(p("user/m:t").display_shortest(), "user/m:t");
        assert_eq!(p("hf.co/o/r:Q4").display_shortest(), "hf.co/o/r:Q4");
        assert!(p("Org/Repo:Latest").matches(&p("org/repo")));
    }
}
