//! The llama-server calls whose size grows with the prompt, typed end to end: `/tokenize` ids are
//! read straight into a `Vec<i64>`, and a `/completion` body is written straight from the ids.
//! As `serde_json::Value`s each token took 32 bytes, and with the copies made of them a GGUF
//! prompt cost the daemon about a hundred times its size in memory.

use super::media::Prompt;
use crate::runner::endpoint::Endpoint;
use crate::runner::RunnerError;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize)]
struct Tokenize<'a> {
    content: &'a str,
    add_special: bool,
    parse_special: bool,
}

#[derive(Deserialize)]
struct Tokenized {
    #[serde(default)]
    tokens: Vec<i64>,
}

/// `/tokenize`: the ids of `text`, special tokens written in it parsed as such.
pub(super) async fn tokenize(
    ep: &Endpoint,
    text: &str,
    add_special: bool,
) -> Result<Vec<i64>, RunnerError> {
    let body = Tokenize {
        content: text,
        add_special,
        parse_special: true,
    };
    let t: Tokenized = ep.post_json("/tokenize", &body).await?;
    Ok(t.tokens)
}

#[derive(Deserialize)]
struct Applied {
    #[serde(default)]
    prompt: String,
}

/// `/apply-template`: the prompt the GGUF's chat template renders from `body`.
pub(super) async fn apply_template(ep: &Endpoint, body: &Value) -> Result<String, RunnerError> {
    let a: Applied = ep.post_json("/apply-template", body).await?;
    Ok(a.prompt)
}

/// A `/completion` body: the fields of `rest` (sampling, stream, ...) and the prompt, which is
/// `tokens` or, with images, the text (then `more`) and the images.
#[derive(Clone, Copy)]
pub(super) struct Completion<'a> {
    pub(super) rest: &'a Value,
    pub(super) media: &'a Prompt,
    pub(super) tokens: &'a [i64],
    pub(super) more: &'a str,
}

#[derive(Serialize)]
struct MediaPrompt<'a> {
    prompt_string: String,
    multimodal_data: &'a [String],
}

impl Serialize for Completion<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.media {
            Prompt::Tokens => m.serialize_entry("prompt", self.tokens)?,
            Prompt::Media { text, images } => m.serialize_entry(
                "prompt",
                &MediaPrompt {
                    prompt_string: format!("{text}{}", self.more),
                    multimodal_data: images,
                },
            )?,
        }
        for (k, v) in self.rest.as_object().into_iter().flatten() {
            if k != "prompt" {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completion_bodies_carry_the_prompt_beside_the_fields() {
        let rest = json!({"stream": true, "n_predict": 3});
        let body = Completion {
            rest: &rest,
            media: &Prompt::Tokens,
            tokens: &[1, 2, 3],
            more: "ignored",
        };
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"prompt": [1, 2, 3], "stream": true, "n_predict": 3})
        );
        let media = Prompt::Media {
            text: "<m>hi".into(),
            images: vec!["aGk=".into()],
        };
        let body = Completion {
            media: &media,
            more: " there",
            ..body
        };
        assert_eq!(
            serde_json::to_value(body).unwrap()["prompt"],
            json!({"prompt_string": "<m>hi there", "multimodal_data": ["aGk="]})
        );
    }
}
