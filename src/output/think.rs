//! Splits a model's reasoning from its answer while the text streams: everything between the
//! opening and closing thinking tags (`<think>` and `</think>`) is thinking, the rest is content.
//! Partial tags are held back until they resolve, so a tag split across chunks is never emitted.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before any visible text: the opening tag may still come (after whitespace).
    Start,
    Thinking,
    /// Right after the closing tag: whitespace before the answer is dropped.
    AfterClose,
    Content,
}

#[derive(Debug, Clone)]
pub struct ThinkSplitter {
    open: String,
    close: String,
    state: State,
    /// No reasoning text seen yet.
    fresh: bool,
    buf: String,
}

/// Text split into its two channels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub thinking: String,
    pub content: String,
}

impl ThinkSplitter {
    /// `in_thinking`: the prompt already opened the reasoning (it ends with the opening tag).
    pub fn new(open: &str, close: &str, in_thinking: bool) -> ThinkSplitter {
        ThinkSplitter {
            open: open.to_owned(),
            close: close.to_owned(),
            state: if in_thinking {
                State::Thinking
            } else {
                State::Start
            },
            fresh: true,
            buf: String::new(),
        }
    }

    pub fn feed(&mut self, text: &str) -> Split {
        self.buf.push_str(text);
        let mut out = Split::default();
        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.buf.trim_start();
                    if let Some(rest) = trimmed.strip_prefix(self.open.as_str()) {
                        self.buf = rest.to_owned();
                        self.state = State::Thinking;
                    } else if trimmed.is_empty() || self.open.starts_with(trimmed) {
                        return out;
                    } else {
                        self.state = State::Content;
                    }
                }
                State::Thinking => {
                    if self.fresh {
                        // Whitespace that opens the reasoning is not part of it.
                        let trimmed = self.buf.trim_start();
                        if trimmed.is_empty() {
                            self.buf.clear();
                            return out;
                        }
                        self.buf = trimmed.to_owned();
                        self.fresh = false;
                    }
                    if let Some(at) = self.buf.find(self.close.as_str()) {
                        out.thinking.push_str(&self.buf[..at]);
                        self.buf = self.buf[at + self.close.len()..].to_owned();
                        self.state = State::AfterClose;
                    } else {
                        let keep = partial_suffix(&self.buf, &self.close);
                        let cut = self.buf.len() - keep;
                        out.thinking.push_str(&self.buf[..cut]);
                        self.buf.drain(..cut);
                        return out;
                    }
                }
                State::AfterClose => {
                    let trimmed = self.buf.trim_start();
                    if trimmed.is_empty() {
                        self.buf.clear();
                        return out;
                    }
                    self.buf = trimmed.to_owned();
                    self.state = State::Content;
                }
                State::Content => {
                    out.content.push_str(&self.buf);
                    self.buf.clear();
                    return out;
                }
            }
        }
    }

    /// The end of generation: whatever is held back goes to the channel it was headed for.
    pub fn finish(&mut self) -> Split {
        let rest = std::mem::take(&mut self.buf);
        match self.state {
            State::Thinking => Split {
                thinking: rest,
                content: String::new(),
            },
            State::AfterClose => Split::default(),
            State::Start | State::Content => Split {
                thinking: String::new(),
                content: rest,
            },
        }
    }
}

/// The thinking tags a Jinja chat template uses, when it uses both: `<think>` (Qwen3, DeepSeek-R1,
/// GLM, MiniMax), `<seed:think>` (Seed-OSS), `[THINK]` (Magistral), `◁think▷` (Kimi), Gemma 4's thought channel.
pub fn jinja_tags(template: &str) -> Option<(String, String)> {
    const TAGS: [(&str, &str); 5] = [
        ("<think>", "</think>"),
        ("<seed:think>", "</seed:think>"),
        ("[THINK]", "[/THINK]"),
        ("◁think▷", "◁/think▷"),
        ("<|channel>thought", "<channel|>"),
    ];
    TAGS.iter()
        .find(|(open, close)| template.contains(open) && template.contains(close))
        .map(|(o, c)| ((*o).to_owned(), (*c).to_owned()))
}

/// The length of the longest end of `text` that is a proper start of `tag` (it may become the tag
/// once more text arrives).
pub fn partial_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && tag.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str], in_thinking: bool) -> (String, String) {
        let mut s = ThinkSplitter::new("<think>", "</think>", in_thinking);
        let (mut t, mut c) = (String::new(), String::new());
        for ch in chunks {
            let o = s.feed(ch);
            t += &o.thinking;
            c += &o.content;
        }
        let o = s.finish();
        (t + &o.thinking, c + &o.content)
    }

    #[test]
    fn splits_whole_and_split_tags() {
        let want = ("hmm ok".to_string(), "Answer".to_string());
        assert_eq!(run(&["<think>hmm ok</think>\n\nAnswer"], false), want);
        assert_eq!(
            run(
                &["<th", "ink>\nhmm", " ok</th", "ink>", "\n", "Answer"],
                false
            ),
            want
        );
        // One character at a time.
        let text = "<think>hmm ok</think>Answer";
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(&refs, false), want);
    }

    #[test]
    fn prompt_opened_thinking() {
        assert_eq!(
            run(&["hmm</think>", "Answer"], true),
            ("hmm".into(), "Answer".into())
        );
    }

    #[test]
    fn no_tags_is_all_content_and_unclosed_is_all_thinking() {
        assert_eq!(
            run(&["  plain <think> text"], false),
            (String::new(), "  plain <think> text".into())
        );
        assert_eq!(
            run(&["<think>never closed <"], false),
            ("never closed <".into(), String::new())
        );
        assert_eq!(run(&["<thi"], false), (String::new(), "<thi".into()));
    }

    #[test]
    fn tags_from_templates() {
        let t = |s: &str| jinja_tags(s).map(|(o, c)| format!("{o} {c}"));
        assert_eq!(
            t("{{ '<think>' }}x{{ '</think>' }}").as_deref(),
            Some("<think> </think>")
        );
        assert_eq!(
            t("[THINK]{{ r }}[/THINK]").as_deref(),
            Some("[THINK] [/THINK]")
        );
        assert_eq!(t("<think> only"), None);
    }

    #[test]
    fn partial_suffixes() {
        assert_eq!(partial_suffix("abc</th", "</think>"), 4);
        assert_eq!(partial_suffix("abc", "</think>"), 0);
        assert_eq!(partial_suffix("é<", "</think>"), 1);
    }
}
