//! `/metrics` and the request layer through the real router, with fake runners.

use super::*;

/// The value of the one sample line that starts with `series` (name and labels).
fn sample(exposition: &str, series: &str) -> f64 {
    let hits: Vec<&str> = exposition
        .lines()
        .filter(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .collect();
    assert_eq!(hits.len(), 1, "one {series} sample in\n{exposition}");
    hits[0].rsplit(' ').next().unwrap().parse().unwrap()
}

async fn scrape(h: &Harness) -> String {
    let r = call(&h.app, "GET", "/metrics", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    text(r).await
}

#[tokio::test]
async fn a_generation_moves_the_request_token_latency_and_load_metrics() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "hi"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "a generated id: {id}");
    text(r).await; // the whole stream, so the final metrics are in
    assert_eq!(call(&h.app, "GET", "/api/nope", None).await.status(), 404);
    let m = scrape(&h).await;
    let model = "ollmlx-test/tiny:latest";
    assert_eq!(
        sample(
            &m,
            r#"ollmlx_http_requests_total{method="POST",route="/api/generate",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            r#"ollmlx_http_requests_total{method="GET",route="none",status="404"}"#
        ),
        1.0,
        "unmatched paths share one label, not the raw path"
    );
    assert!(!m.contains("/api/nope"));
    assert_eq!(
        sample(
            &m,
            &format!(r#"ollmlx_prompt_tokens_total{{model="{model}"}}"#)
        ),
        3.0
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"ollmlx_generated_tokens_total{{model="{model}"}}"#)
        ),
        3.0
    );
    // Three chunks: one first token, two gaps.
    assert_eq!(
        sample(
            &m,
            &format!(r#"ollmlx_time_to_first_token_seconds_count{{model="{model}"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"ollmlx_inter_token_latency_seconds_count{{model="{model}"}}"#)
        ),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"ollmlx_model_loads_total{{model="{model}",result="ok"}}"#)
        ),
        1.0
    );
    assert_eq!(sample(&m, "ollmlx_queue_wait_seconds_count"), 1.0);
    assert_eq!(sample(&m, "ollmlx_queue_depth"), 0.0);
    assert_eq!(sample(&m, "ollmlx_loaded_models"), 1.0);
    assert!(
        sample(
            &m,
            &format!(r#"ollmlx_runner_memory_bytes{{model="{model}",format="mlx"}}"#)
        ) > 0.0
    );
}

#[tokio::test]
async fn metrics_obey_the_host_and_origin_rules_of_the_api() {
    let h = harness();
    let get = |header: (&'static str, &'static str)| {
        Request::builder()
            .uri("/metrics")
            .header(header.0, header.1)
            .body(Body::empty())
            .unwrap()
    };
    let r = h
        .app
        .clone()
        .oneshot(get(("host", "evil.example")))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "DNS rebinding guard");
    let r = h
        .app
        .clone()
        .oneshot(get(("origin", "https://evil.example")))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "CORS");
    let r = h
        .app
        .clone()
        .oneshot(get(("origin", "http://localhost:3000")))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(r.headers()["access-control-expose-headers"], "X-Request-Id");
    assert!(r.headers().contains_key("x-request-id"));
    let m = scrape(&h).await;
    assert_eq!(
        sample(
            &m,
            r#"ollmlx_http_requests_total{method="GET",route="none",status="403"}"#
        ),
        2.0,
        "refused before routing, still counted"
    );
    assert_eq!(
        sample(
            &m,
            r#"ollmlx_http_requests_total{method="GET",route="/metrics",status="200"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_plain_client_request_id_is_kept() {
    let h = harness();
    let req = Request::builder()
        .uri("/api/version")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let r = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}
