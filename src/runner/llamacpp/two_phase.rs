//! Thinking + format in two requests: free reasoning up to the closing tag, then the schema.

use super::media::Prompt;
use super::sse::{sse_parser, SseOptions};
use super::wire::{tokenize, Completion};
use crate::runner::endpoint::Endpoint;
use crate::runner::{Done, EventStream, RunnerError, RunnerEvent};
use serde_json::{json, Value};
use std::sync::Arc;

/// The constrained half of a thinking request with a format.
pub(super) struct SecondPhase {
    pub(super) close: String,
    pub(super) prompt: Arc<Vec<i64>>,
    /// The prompt's text and images, when it has images.
    pub(super) media: Prompt,
    /// The request body but its prompt (with `json_schema`).
    pub(super) body: Value,
    pub(super) n_predict: i64,
    pub(super) top_n: usize,
    pub(super) return_context: bool,
}

enum Phase {
    Free {
        events: EventStream,
        text: String,
        closed: bool,
        next: SecondPhase,
    },
    Constrained {
        events: EventStream,
        first: Done,
    },
    Over,
}

/// Runs the free (thinking) stream; when it stopped at the closing tag, continues from prompt +
/// reasoning with the schema, and ends with one `done` that counts both halves.
pub(super) fn then_constrained(
    ep: Endpoint,
    events: EventStream,
    next: SecondPhase,
) -> EventStream {
    use futures_util::StreamExt;
    let state = Phase::Free {
        events,
        text: String::new(),
        closed: false,
        next,
    };
    Box::pin(futures_util::stream::unfold(state, move |state| {
        let ep = ep.clone();
        async move {
            match state {
                Phase::Over => None,
                Phase::Free {
                    mut events,
                    mut text,
                    mut closed,
                    next,
                } => match events.next().await? {
                    Ok(RunnerEvent::Chunk { content, logprobs }) => {
                        text.push_str(&content);
                        closed = content == next.close;
                        let item = Ok(RunnerEvent::Chunk { content, logprobs });
                        Some((
                            item,
                            Phase::Free {
                                events,
                                text,
                                closed,
                                next,
                            },
                        ))
                    }
                    Ok(RunnerEvent::Done(first)) if closed && first.done_reason == "stop" => {
                        match constrained(&ep, &text, &first, &next).await {
                            Ok(Some(events)) => {
                                let mut s = Phase::Constrained { events, first };
                                // Forward the second stream's first item.
                                let Phase::Constrained { events, first } = &mut s else {
                                    unreachable!()
                                };
                                let item = events.next().await?;
                                let done = matches!(item, Ok(RunnerEvent::Done(_)));
                                let item = item.map(|e| merge_done(e, first));
                                Some((item, if done { Phase::Over } else { s }))
                            }
                            Ok(None) => {
                                let mut d = first;
                                d.done_reason = "length".into();
                                Some((Ok(RunnerEvent::Done(d)), Phase::Over))
                            }
                            Err(e) => Some((Err(e), Phase::Over)),
                        }
                    }
                    other => {
                        let end = !matches!(other, Ok(RunnerEvent::Start { .. }));
                        let state = if end {
                            Phase::Over
                        } else {
                            Phase::Free {
                                events,
                                text,
                                closed,
                                next,
                            }
                        };
                        Some((other, state))
                    }
                },
                Phase::Constrained { mut events, first } => {
                    let item = events.next().await?;
                    let done = matches!(item, Ok(RunnerEvent::Done(_)) | Err(_));
                    let item = item.map(|e| merge_done(e, &first));
                    Some((
                        item,
                        if done {
                            Phase::Over
                        } else {
                            Phase::Constrained { events, first }
                        },
                    ))
                }
            }
        }
    }))
}

/// Starts the constrained half: `None` when the token budget is already spent.
async fn constrained(
    ep: &Endpoint,
    text: &str,
    first: &Done,
    next: &SecondPhase,
) -> Result<Option<EventStream>, RunnerError> {
    let left = next.n_predict - first.eval_count as i64;
    if left <= 0 {
        return Ok(None);
    }
    let reasoning = tokenize(ep, text, false).await?;
    let prompt = [next.prompt.as_slice(), &reasoning].concat();
    let mut body = next.body.clone();
    body["n_predict"] = json!(left);
    let body = Completion {
        rest: &body,
        media: &next.media,
        tokens: &prompt,
        more: text,
    };
    let resp = ep.post("/completion", &body).await?;
    Ok(Some(ep.events(
        resp,
        sse_parser(SseOptions {
            prompt: Arc::new(prompt),
            return_context: next.return_context,
            top_n: next.top_n,
            thinking: None,
            reveal_stop: None,
        }),
    )))
}

/// The second half's end event, counting the first half's prompt and tokens too.
fn merge_done(e: RunnerEvent, first: &Done) -> RunnerEvent {
    match e {
        RunnerEvent::Done(d) => RunnerEvent::Done(Done {
            done_reason: d.done_reason,
            prompt_eval_count: first.prompt_eval_count,
            prompt_eval_duration: first.prompt_eval_duration,
            eval_count: first.eval_count + d.eval_count,
            eval_duration: first.eval_duration + d.prompt_eval_duration + d.eval_duration,
            context: d.context,
            stop_sequence: d.stop_sequence,
        }),
        other => other,
    }
}
