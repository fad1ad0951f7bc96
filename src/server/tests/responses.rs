//! `/v1/responses` handler tests: input items onto the runner, the Response object, the exact
//! event order with sequence numbers, and errors before and after a stream began.

use super::*;

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(e, _)| e.as_str()).collect()
}

async fn stream(h: &Harness, mut body: Value) -> Vec<(String, Value)> {
    body["stream"] = json!(true);
    let r = call(&h.app, "POST", "/v1/responses", Some(body)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let ev = named_events(&text(r).await);
    for (i, (_, d)) in ev.iter().enumerate() {
        assert_eq!(d["sequence_number"], i, "{d}");
    }
    ev
}

#[tokio::test]
async fn text_reply_echoes_the_request() {
    let h = harness();
    let body = json!({"model": MODEL, "input": "hi", "instructions": "Be brief.",
                      "max_output_tokens": 2, "temperature": 0.3});
    let r = call(&h.app, "POST", "/v1/responses", Some(body)).await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["object"], "response");
    assert!(v["created_at"].as_u64().unwrap() > 0);
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        v["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(v["model"], MODEL);
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "message");
    assert!(out[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(out[0]["role"], "assistant");
    assert_eq!(
        out[0]["content"],
        json!([{"type": "output_text", "text": "Hello,", "annotations": [], "logprobs": []}])
    );
    assert_eq!(v["usage"]["input_tokens"], 3);
    assert_eq!(v["usage"]["output_tokens"], 2);
    assert_eq!(v["usage"]["total_tokens"], 5);
    assert_eq!(
        (
            &v["instructions"],
            &v["temperature"],
            &v["top_p"],
            &v["tool_choice"],
            &v["tools"],
            &v["parallel_tool_calls"]
        ),
        (
            &json!("Be brief."),
            &json!(0.3),
            &json!(1.0),
            &json!("auto"),
            &json!([]),
            &json!(true)
        )
    );
    let m = last_messages(&h);
    assert_eq!((m[0].role.as_str(), m[1].role.as_str()), ("system", "user"));
    let o = h.factory.last().requests.lock().unwrap()[0].options.clone();
    assert_eq!((o.num_predict, o.temperature, o.top_p), (2, 0.3, 1.0));

    let body = json!({"model": MODEL, "input": [{"role": "user", "content": "hi"}],
                      "text": {"format": {"type": "json_schema", "name": "x",
                                          "schema": {"type": "object"}}}});
    let v = json_of(call(&h.app, "POST", "/v1/responses", Some(body)).await).await;
    assert_eq!(v["status"], "completed");
    assert_eq!(v["incomplete_details"], Value::Null);
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(reqs.last().unwrap().format, Some(json!({"type": "object"})));
}

#[tokio::test]
async fn text_stream_event_order() {
    let h = harness();
    let ev = stream(&h, json!({"model": MODEL, "input": "hi"})).await;
    assert_eq!(
        names(&ev),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let created = &ev[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    let item_id = ev[2].1["item"]["id"].clone();
    for (_, d) in &ev[3..9] {
        assert_eq!(d["item_id"], item_id);
        assert_eq!(d["output_index"], 0);
    }
    assert_eq!(ev[9].1["item"]["id"], item_id);
    assert_eq!(ev[7].1["text"], "Hello, world");
    let done = &ev[10].1["response"];
    assert_eq!(done["id"], created["id"]);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello, world");
    assert_eq!(done["usage"]["output_tokens"], 3);

    let ev = stream(
        &h,
        json!({"model": MODEL, "input": "hi", "max_output_tokens": 1}),
    )
    .await;
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "response.incomplete");
    assert_eq!(data["response"]["status"], "incomplete");
}

#[tokio::test]
async fn reasoning_then_text() {
    let h = agent_harness(THINK_THEN_TEXT);
    let body = json!({"model": AGENT, "input": "hi", "reasoning": {"effort": "high"}});
    let v = json_of(call(&h.app, "POST", "/v1/responses", Some(body.clone())).await).await;
    let out = v["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert!(out[0]["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(
        out[0]["summary"],
        json!([{"type": "summary_text", "text": "Hmm."}])
    );
    assert_eq!(out[1]["content"][0]["text"], "Hello there");
    assert_eq!(v["reasoning"]["effort"], "high");
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(reqs[0].template_kwargs["reasoning_effort"], "high");

    let ev = stream(&h, body).await;
    assert_eq!(
        names(&ev),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(ev[6].1["text"], "Hmm.");
    assert_eq!(ev[8].1["item"]["summary"][0]["text"], "Hmm.");
    assert_eq!(
        (&ev[9].1["output_index"], &ev[15].1["output_index"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(ev[16].1["response"]["output"].as_array().unwrap().len(), 2);

    // No reasoning asked of a model that cannot think: it answers.
    let body = json!({"model": MODEL, "input": "hi", "reasoning": {"effort": "low"}});
    assert_eq!(
        call(&h.app, "POST", "/v1/responses", Some(body))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn function_call_round_trip() {
    let h = agent_harness(THINK_THEN_CALL);
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": AGENT, "input": "Weather in Paris?", "tools": tools});
    let v = json_of(call(&h.app, "POST", "/v1/responses", Some(body.clone())).await).await;
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 2, "{v}");
    let fc = &out[1];
    assert_eq!(fc["type"], "function_call");
    assert!(fc["id"].as_str().unwrap().starts_with("fc_"));
    assert!(fc["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(fc["name"], "get_weather");
    assert_eq!(fc["status"], "completed");
    let args: Value = serde_json::from_str(fc["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(v["tools"], tools, "tools are echoed");
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(
        reqs[0].tools,
        vec![
            json!({"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
        ]
    );

    let ev = stream(&h, body.clone()).await;
    assert_eq!(
        names(&ev),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(ev[8].1["item"]["arguments"], "");
    assert_eq!(ev[8].1["item"]["status"], "in_progress");
    assert_eq!(ev[9].1["delta"], ev[10].1["arguments"]);
    assert_eq!(ev[10].1["name"], "get_weather");
    assert_eq!(ev[11].1["item"]["status"], "completed");

    // Send the output back with the call: a tool message named after it.
    let call_id = fc["call_id"].as_str().unwrap();
    let mut input = out.clone();
    input.insert(0, json!({"role": "user", "content": "Weather in Paris?"}));
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": "18C"}));
    let mut body = body;
    body["input"] = json!(input);
    body["tool_choice"] = json!("none");
    assert_eq!(
        call(&h.app, "POST", "/v1/responses", Some(body))
            .await
            .status(),
        200
    );
    let m = last_messages(&h);
    assert_eq!(m.len(), 3);
    assert_eq!(m[1].thinking, "Let me check.");
    assert_eq!(m[1].tool_calls[0]["id"], call_id);
    assert_eq!(
        (
            m[2].role.as_str(),
            m[2].tool_name.as_str(),
            m[2].content.as_str()
        ),
        ("tool", "get_weather", "18C")
    );
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert!(reqs.last().unwrap().tools.is_empty(), "tool_choice none");
}

#[tokio::test]
async fn errors() {
    let h = harness();
    let cases = [
        (
            json!({"model": MODEL, "input": "x", "previous_response_id": "resp_1"}),
            400,
            "invalid_request_error",
            "previous_response_id is not supported: ollmlx's /v1/responses is stateless",
        ),
        (
            json!({"model": MODEL, "input": []}),
            400,
            "invalid_request_error",
            "input is required",
        ),
        (
            json!({"model": MODEL, "input": "x", "reasoning": {"effort": "lots"}}),
            400,
            "invalid_request_error",
            "invalid reasoning effort",
        ),
        (
            json!({"model": "nobody/nothing", "input": "x"}),
            404,
            "not_found_error",
            "not found",
        ),
    ];
    for (body, status, kind, msg) in cases {
        let r = call(&h.app, "POST", "/v1/responses", Some(body.clone())).await;
        assert_eq!(r.status(), status, "{body}");
        let v = json_of(r).await;
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(msg), "{v}");
    }

    let h = harness_with(
        FakeFactory {
            fail_after: Some(1),
            ..FakeFactory::new(&["a", "b"])
        },
        |_| {},
    );
    let ev = stream(&h, json!({"model": MODEL, "input": "x"})).await;
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "response.failed");
    let r = &data["response"];
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["code"], "server_error");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unexpectedly stopped"));
}
