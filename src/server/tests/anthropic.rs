//! `/v1/messages` handler tests: the translation onto the runner, Anthropic's reply shapes, the
//! exact SSE event order, and errors in Anthropic's shape with the native status codes.

use super::*;

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(e, _)| e.as_str()).collect()
}

async fn stream(h: &Harness, mut body: Value) -> Vec<(String, Value)> {
    body["stream"] = json!(true);
    let r = call(&h.app, "POST", "/v1/messages", Some(body)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    named_events(&text(r).await)
}

#[tokio::test]
async fn text_reply_and_options() {
    let h = harness();
    let body = json!({"model": MODEL, "max_tokens": 2, "messages": user("hi"),
                      "system": "Be brief.", "metadata": {"user_id": "u"}});
    let r = call(&h.app, "POST", "/v1/messages", Some(body)).await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    assert_eq!(
        (&v["type"], &v["role"], &v["model"]),
        (&json!("message"), &json!("assistant"), &json!(MODEL))
    );
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hello,"}]));
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"], json!({"input_tokens": 3, "output_tokens": 2}));
    let m = last_messages(&h);
    assert_eq!(
        (m[0].role.as_str(), m[0].content.as_str()),
        ("system", "Be brief.")
    );
    let o = h.factory.last().requests.lock().unwrap()[0].options.clone();
    assert_eq!(
        (o.num_predict, o.temperature, o.top_k),
        (2, 0.8, 40),
        "max_tokens; otherwise the model's defaults"
    );

    let body = json!({"model": MODEL, "max_tokens": 50, "messages": user("hi"),
                      "temperature": 0.2, "top_p": 0.5, "top_k": 5, "stop_sequences": ["END"]});
    let v = json_of(call(&h.app, "POST", "/v1/messages", Some(body)).await).await;
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["text"], "Hello, world");
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    let o = &reqs.last().unwrap().options;
    assert_eq!(
        (o.temperature, o.top_p, o.top_k, o.stop.clone()),
        (0.2, 0.5, 5, vec!["END".to_owned()])
    );

    // Structured outputs: output_config.format's schema constrains the answer.
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    let body = json!({"model": MODEL, "max_tokens": 5, "messages": user("hi"),
                      "output_config": {"format": {"type": "json_schema", "schema": schema}}});
    assert_eq!(
        call(&h.app, "POST", "/v1/messages", Some(body))
            .await
            .status(),
        200
    );
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(reqs.last().unwrap().format, Some(schema));
}

#[tokio::test]
async fn text_stream_event_order() {
    let h = harness();
    let ev = stream(
        &h,
        json!({"model": MODEL, "max_tokens": 10, "messages": user("hi")}),
    )
    .await;
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &ev[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["model"], MODEL);
    assert_eq!(
        ev[2].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    let text: String = ev[3..6]
        .iter()
        .map(|(_, d)| {
            assert_eq!(
                (&d["index"], &d["delta"]["type"]),
                (&json!(0), &json!("text_delta"))
            );
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Hello, world");
    assert_eq!(ev[6].1["index"], 0);
    assert_eq!(
        ev[7].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 3, "output_tokens": 3}})
    );
}

#[tokio::test]
async fn thinking_then_text() {
    let h = agent_harness(THINK_THEN_TEXT);
    let body = json!({"model": AGENT, "max_tokens": 100, "messages": user("hi"),
                      "thinking": {"type": "enabled", "budget_tokens": 1024}});
    let v = json_of(call(&h.app, "POST", "/v1/messages", Some(body.clone())).await).await;
    assert_eq!(
        v["content"],
        json!([{"type": "thinking", "thinking": "Hmm.", "signature": ""},
               {"type": "text", "text": "Hello there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(reqs[0].template_kwargs["enable_thinking"], true);

    let ev = stream(&h, body).await;
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        ev[2].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        ev[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "Hmm"})
    );
    assert_eq!(ev[5].1["index"], 0);
    assert_eq!(
        (&ev[6].1["index"], &ev[6].1["content_block"]["type"]),
        (&json!(1), &json!("text"))
    );
    assert_eq!(
        ev[7].1["delta"],
        json!({"type": "text_delta", "text": "Hello"})
    );
    assert_eq!(ev[9].1["index"], 1);

    // Thinking off reaches the template; thinking asked of a model that cannot think is dropped.
    let body = json!({"model": AGENT, "max_tokens": 100, "messages": user("hi"),
                      "thinking": {"type": "disabled"}});
    assert_eq!(
        call(&h.app, "POST", "/v1/messages", Some(body))
            .await
            .status(),
        200
    );
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(
        reqs.last().unwrap().template_kwargs["enable_thinking"],
        false
    );
    let body = json!({"model": MODEL, "max_tokens": 100, "messages": user("hi"),
                      "thinking": {"type": "enabled", "budget_tokens": 1024}});
    assert_eq!(
        call(&h.app, "POST", "/v1/messages", Some(body))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn tool_use_round_trip() {
    let h = agent_harness(THINK_THEN_CALL);
    let tools = json!([{"name": "get_weather", "description": "Weather in a city",
                        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": AGENT, "max_tokens": 100, "tools": tools,
                      "messages": user("Weather in Paris?")});
    let v = json_of(call(&h.app, "POST", "/v1/messages", Some(body.clone())).await).await;
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "thinking");
    let tu = &v["content"][1];
    assert_eq!(
        (&tu["type"], &tu["name"], &tu["input"]),
        (
            &json!("tool_use"),
            &json!("get_weather"),
            &json!({"city": "Paris"})
        )
    );
    let id = tu["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("call_"), "{id}");
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(
        reqs[0].tools,
        vec![
            json!({"type": "function", "function": {"name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
        ]
    );

    let ev = stream(&h, body.clone()).await;
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &ev[5].1;
    assert_eq!(start["index"], 1);
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    assert_eq!(start["content_block"]["input"], json!({}));
    let delta = &ev[6].1["delta"];
    assert_eq!(delta["type"], "input_json_delta");
    let args: Value = serde_json::from_str(delta["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(ev[8].1["delta"]["stop_reason"], "tool_use");

    // The result goes back as a tool message named after the call; tool_choice none withholds.
    let mut body = body;
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": v["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "18C"}]}
    ]);
    body["tool_choice"] = json!({"type": "none"});
    let r = call(&h.app, "POST", "/v1/messages", Some(body)).await;
    assert_eq!(r.status(), 200);
    let m = last_messages(&h);
    assert_eq!(m.len(), 3);
    assert_eq!(m[1].thinking, "Let me check.");
    assert_eq!(
        m[1].tool_calls[0]["function"],
        json!({"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}})
    );
    assert_eq!(
        (
            m[2].role.as_str(),
            m[2].content.as_str(),
            m[2].tool_name.as_str(),
            m[2].tool_call_id.as_str()
        ),
        ("tool", "18C", "get_weather", id.as_str())
    );
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert!(reqs.last().unwrap().tools.is_empty());
}

#[tokio::test]
async fn errors_in_anthropics_shape() {
    let h = harness();
    let cases = [
        (
            json!({"model": MODEL, "messages": user("x")}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"model": MODEL, "max_tokens": 0, "messages": user("x")}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "messages": []}),
            400,
            "invalid_request_error",
            "messages",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}),
            400,
            "invalid_request_error",
            "role",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "messages":
                [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": ""}}]}]}),
            400,
            "invalid_request_error",
            "vision",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "messages": user("x"),
                   "tools": [{"name": "f", "input_schema": {}}]}),
            400,
            "invalid_request_error",
            "does not support tools",
        ),
        (
            json!({"model": "nobody/nothing", "max_tokens": 5, "messages": user("x")}),
            404,
            "not_found_error",
            "not found",
        ),
    ];
    for (body, status, kind, msg) in cases {
        let r = call(&h.app, "POST", "/v1/messages", Some(body.clone())).await;
        assert_eq!(r.status(), status, "{body}");
        let v = json_of(r).await;
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(msg), "{v}");
        assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    }
    let r = call(&h.app, "POST", "/v1/messages", None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["error"]["type"], "invalid_request_error");

    // A failure before the first token keeps its status; after it, an `error` event ends the stream.
    let h = harness_with(
        FakeFactory {
            fail_after: Some(0),
            ..FakeFactory::new(&["a", "b"])
        },
        |_| {},
    );
    let body = json!({"model": MODEL, "max_tokens": 5, "stream": true, "messages": user("x")});
    let r = call(&h.app, "POST", "/v1/messages", Some(body.clone())).await;
    assert_eq!(r.status(), 500);
    assert_eq!(json_of(r).await["error"]["type"], "api_error");
    let h = harness_with(
        FakeFactory {
            fail_after: Some(1),
            ..FakeFactory::new(&["a", "b"])
        },
        |_| {},
    );
    let ev = stream(&h, body).await;
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "error"
        ]
    );
    let err = &ev[4].1;
    assert_eq!(err["error"]["type"], "api_error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unexpectedly stopped"));
}
