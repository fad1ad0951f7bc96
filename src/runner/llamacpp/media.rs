//! Prompts with images: Ollama's image markers and messages as llama-server's media input.

use crate::api::Message;
use serde_json::{json, Value};

/// A prompt as llama-server takes it: token ids, or text with media markers and the images.
#[derive(Debug, Clone)]
pub(super) enum Prompt {
    Tokens,
    Media { text: String, images: Vec<String> },
}

/// A data URI that stands for an image while a chat is only rendered: `/apply-template` decodes
/// it but never reads the picture, so the real (large) images need not travel each time.
const PLACEHOLDER_IMAGE: &str = "data:image/png;base64,AAAA";

/// An Ollama message as llama-server's OpenAI-style chat template input. Images become
/// `image_url` parts before the text (where Ollama puts their markers), each a placeholder that
/// `/apply-template` turns into the media marker.
pub(super) fn openai_message(m: &Message) -> Value {
    let content = if m.images.is_empty() {
        json!(m.content)
    } else {
        let mut parts: Vec<Value> = m
            .images
            .iter()
            .map(|_| json!({"type": "image_url", "image_url": {"url": PLACEHOLDER_IMAGE}}))
            .collect();
        if !m.content.is_empty() {
            parts.push(json!({"type": "text", "text": m.content}));
        }
        json!(parts)
    };
    let mut v = json!({"role": m.role, "content": content});
    if !m.thinking.is_empty() {
        v["reasoning_content"] = json!(m.thinking);
    }
    if !m.tool_calls.is_empty() {
        // llama.cpp wants OpenAI's shape: each call typed, arguments as an object or a string.
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(o) = c.as_object_mut() {
                    o.insert("type".into(), json!("function"));
                    let f = o.entry("function").or_insert_with(|| json!({}));
                    if f.get("arguments").is_none_or(Value::is_null) {
                        f["arguments"] = json!({});
                    }
                }
                c
            })
            .collect();
        v["tool_calls"] = json!(calls);
    }
    if !m.tool_name.is_empty() {
        v["name"] = json!(m.tool_name);
    }
    if !m.tool_call_id.is_empty() {
        v["tool_call_id"] = json!(m.tool_call_id);
    }
    v
}

/// A raw prompt with Ollama's `[img-N]` markers as llama-server's: each marker naming one of
/// `images` becomes `marker`, and the images come back in the order of their markers. Images the
/// text does not mention go first.
pub(super) fn place_images(text: &str, images: &[String], marker: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut order = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("[img-") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let id = after[..digits].parse::<usize>().ok();
        match id.filter(|i| *i < images.len() && after[digits..].starts_with(']')) {
            Some(i) => {
                out.push_str(marker);
                order.push(i);
                rest = &after[digits + 1..];
            }
            None => {
                out.push_str("[img-");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let unmentioned: Vec<usize> = (0..images.len()).filter(|i| !order.contains(i)).collect();
    let text = marker.repeat(unmentioned.len()) + &out;
    let ordered = unmentioned
        .into_iter()
        .chain(order)
        .map(|i| images[i].clone())
        .collect();
    (text, ordered)
}

#[cfg(test)]
mod tests {
    use super::{openai_message, place_images, PLACEHOLDER_IMAGE};
    use crate::api::Message;
    use serde_json::json;

    #[test]
    fn ollama_image_markers_become_media_markers_in_their_order() {
        let images = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let (text, order) = place_images("x[img-2] y [img-0] [img-9] [img-x]", &images, "<M>");
        // Image 1 is not mentioned: it goes first. Unknown ids stay text.
        assert_eq!(text, "<M>x<M> y <M> [img-9] [img-x]");
        assert_eq!(order, ["b", "c", "a"]);
        let (text, order) = place_images("plain", &[], "<M>");
        assert_eq!((text.as_str(), order.len()), ("plain", 0));
    }

    #[test]
    fn images_become_content_parts_before_the_text() {
        let mut m = Message::new("user", "what is it?");
        m.images = vec!["aGk=".into()];
        let part = json!({"type": "image_url", "image_url": {"url": PLACEHOLDER_IMAGE}});
        assert_eq!(
            openai_message(&m)["content"],
            json!([part, {"type": "text", "text": "what is it?"}])
        );
        m.content.clear();
        assert_eq!(openai_message(&m)["content"], json!([part]));
        assert_eq!(openai_message(&Message::new("user", "hi"))["content"], "hi");
    }
}
