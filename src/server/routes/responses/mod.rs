//! `POST /v1/responses`: OpenAI's Responses API, stateless (as Ollama's). Input items become
//! native messages; the reply's thinking, text and tool calls become `reasoning`, `message` and
//! `function_call` output items, and a stream is the Responses event sequence, each event with its
//! `sequence_number`. Errors before a stream use OpenAI's error object; after, `response.failed`.

mod reply;
mod request;

use crate::api::responses::ResponsesRequest;
use crate::api::Options;
use crate::server::infer;
use crate::server::routes::common::{self, bad};
use crate::server::routes::openai::{effort_to_think, parse, ChatAsk, OpenAiError};
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use reply::{stream_reply, whole_reply, Echo};
use request::{input, text_format, tools};
use std::time::Instant;

pub async fn responses(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let req: ResponsesRequest = parse(body)?;
    if req.previous_response_id.is_some() || req.conversation.is_some() {
        return Err(bad(format!(
            "{} is not supported: ollmlx's /v1/responses is stateless",
            if req.previous_response_id.is_some() {
                "previous_response_id"
            } else {
                "conversation"
            }
        ))
        .into());
    }
    let messages = input(req.instructions.as_deref(), &req.input)?;
    let tools = tools(&req)?;
    let format = common::format(&text_format(req.text.as_ref())?)?;
    let effort = req.reasoning.as_ref().and_then(|r| r["effort"].as_str());
    let think = effort.map(effort_to_think).transpose()?;
    let options = Options {
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.unwrap_or(1.0)),
        num_predict: req.max_output_tokens,
        ..Options::default()
    };
    // Agents send a reasoning effort to every model: one that cannot think just answers.
    let job = ChatAsk {
        model: req.model.clone(),
        messages,
        options,
        tools,
        think,
        relax_think: true,
        format,
        tool_choice: common::tool_choice(req.tool_choice.as_ref()),
        logprobs: None,
    }
    .job(&state, started)?;
    let pieces = infer::run(&state, job).await?;
    let echo = Echo::new(&req);
    if req.stream {
        stream_reply(pieces, echo).await
    } else {
        whole_reply(pieces, echo).await
    }
}
