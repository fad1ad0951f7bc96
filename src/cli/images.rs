//! Image files named in a prompt, as `ollama run` finds them for vision models: a word that is a
//! path (`/…`, `./…`, `../…`, `~/…`, optionally quoted, spaces escaped with `\ `) ending in
//! .jpg, .jpeg, .png or .webp and naming a file that exists. They are taken out of the prompt and
//! sent as the message's images.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// The prompt without its image paths, and the images (base64) with the paths they came from.
pub fn extract(
    prompt: &str,
    home: Option<&Path>,
) -> anyhow::Result<(String, Vec<(PathBuf, String)>)> {
    let mut kept: Vec<String> = Vec::new();
    let mut images = Vec::new();
    for word in words(prompt) {
        match image_path(&word, home) {
            Some(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| anyhow::anyhow!("couldn't read image {}: {e}", path.display()))?;
                images.push((path, STANDARD.encode(&bytes)));
            }
            None => kept.push(word),
        }
    }
    Ok((kept.join(" "), images))
}

/// Whitespace-separated words, where `\ ` is a space inside a word and quotes group.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', None) if chars.peek() == Some(&' ') => {
                cur.push(' ');
                chars.next();
            }
            ('\'' | '"', None) if cur.is_empty() => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            (c, None) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (c, _) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn image_path(word: &str, home: Option<&Path>) -> Option<PathBuf> {
    let looks_like_path = ["/", "./", "../", "~/"].iter().any(|p| word.starts_with(p));
    let ext = Path::new(word).extension()?.to_str()?.to_ascii_lowercase();
    if !looks_like_path || !EXTENSIONS.contains(&ext.as_str()) {
        return None;
    }
    let path = match word.strip_prefix("~/") {
        Some(rest) => home?.join(rest),
        None => PathBuf::from(word),
    };
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_become_images() {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path().join("my cat.PNG");
        std::fs::write(&cat, b"png!").unwrap();
        let escaped = cat.display().to_string().replace(' ', "\\ ");
        let (prompt, images) = extract(&format!("what is in {escaped} please"), None).unwrap();
        assert_eq!(prompt, "what is in please");
        assert_eq!(images, vec![(cat.clone(), "cG5nIQ==".to_string())]);
        // Quoted, and from the home directory.
        let (_, images) = extract(&format!("see '{}'", cat.display()), None).unwrap();
        assert_eq!(images.len(), 1);
        let (_, images) = extract("see ~/my\\ cat.PNG", Some(dir.path())).unwrap();
        assert_eq!(images.len(), 1);
        // Words that are not existing image files stay in the prompt.
        let (prompt, images) =
            extract("a /no/such.png and notes.png and /etc/hostname", None).unwrap();
        assert!(images.is_empty());
        assert_eq!(prompt, "a /no/such.png and notes.png and /etc/hostname");
    }
}
