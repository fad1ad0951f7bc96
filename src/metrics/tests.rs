use super::*;

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{text}"))
}

#[test]
fn meter_splits_first_token_from_the_gaps_after_it() {
    let m = Metrics::default();
    let mut meter = m.meter("tiny:latest", Instant::now() - Duration::from_millis(300));
    meter.output();
    meter.output();
    meter.output();
    meter.done(11, 3);
    let ttft = m.ttft.get(&["tiny:latest"]).snapshot();
    assert_eq!(ttft.count, 1);
    assert!(ttft.sum_seconds >= 0.3, "from the request's arrival");
    assert_eq!(m.inter_token.get(&["tiny:latest"]).snapshot().count, 2);
    assert_eq!(m.prompt_tokens.get(&["tiny:latest"]).get(), 11);
    assert_eq!(m.generated_tokens.get(&["tiny:latest"]).get(), 3);
}

#[test]
fn wait_guard_counts_while_held() {
    let m = Arc::new(Metrics::default());
    let a = m.waiting();
    let b = m.waiting();
    assert_eq!(m.queue_depth.get(), 2);
    drop(a);
    assert_eq!(m.queue_depth.get(), 1);
    drop(b);
    assert_eq!(m.queue_depth.get(), 0);
    assert_eq!(m.queue_wait.snapshot().count, 2);
}

#[test]
fn loads_count_both_results_and_time_only_successes() {
    let m = Metrics::default();
    m.load("a:1", true, Duration::from_secs(2));
    m.load("a:1", false, Duration::from_secs(9));
    let text = m.render(&[]);
    assert_eq!(
        line(
            &text,
            "ollmlx_model_loads_total{model=\"a:1\",result=\"ok\"}"
        ),
        "ollmlx_model_loads_total{model=\"a:1\",result=\"ok\"} 1"
    );
    assert!(text.contains("ollmlx_model_loads_total{model=\"a:1\",result=\"error\"} 1\n"));
    assert!(text.contains("ollmlx_model_load_seconds_count{model=\"a:1\"} 1\n"));
    assert!(text.contains("ollmlx_model_load_seconds_sum{model=\"a:1\"} 2\n"));
}

#[test]
fn render_has_a_header_for_every_metric_and_the_scrape_samples() {
    let m = Metrics::default();
    m.requests.get(&["POST", "/api/generate", "200"]).inc();
    let loaded = [
        LoadedSample {
            model: "tiny:latest".into(),
            format: "mlx",
            memory_bytes: 1 << 20,
            prefix_cache: Some(PrefixCacheStats {
                bytes: 4096,
                budget: 8192,
                entries: 1,
                hits: 3,
                misses: 1,
                reused_tokens: 40,
            }),
        },
        LoadedSample {
            model: "g:latest".into(),
            format: "gguf",
            memory_bytes: 7,
            prefix_cache: None,
        },
    ];
    let text = m.render(&loaded);
    for name in [
        "ollmlx_build_info",
        "ollmlx_http_requests_total",
        "ollmlx_prompt_tokens_total",
        "ollmlx_generated_tokens_total",
        "ollmlx_time_to_first_token_seconds",
        "ollmlx_inter_token_latency_seconds",
        "ollmlx_queue_depth",
        "ollmlx_queue_wait_seconds",
        "ollmlx_model_loads_total",
        "ollmlx_model_load_seconds",
        "ollmlx_runner_crashes_total",
        "ollmlx_runner_restarts_total",
        "ollmlx_loaded_models",
        "ollmlx_runner_memory_bytes",
        "ollmlx_prefix_cache_bytes",
        "ollmlx_prefix_cache_budget_bytes",
        "ollmlx_prefix_cache_hits_total",
        "ollmlx_prefix_cache_misses_total",
        "ollmlx_prefix_cache_reused_tokens_total",
        "ollmlx_prefix_cache_hit_ratio",
    ] {
        assert_eq!(
            text.matches(&format!("# TYPE {name} ")).count(),
            1,
            "{name} typed once"
        );
    }
    assert!(text.contains(
        "ollmlx_http_requests_total{method=\"POST\",route=\"/api/generate\",status=\"200\"} 1\n"
    ));
    assert!(text.contains("ollmlx_loaded_models 2\n"));
    assert!(text.contains("ollmlx_runner_memory_bytes{model=\"g:latest\",format=\"gguf\"} 7\n"));
    assert!(text.contains("ollmlx_prefix_cache_bytes{model=\"tiny:latest\"} 4096\n"));
    assert!(text.contains("ollmlx_prefix_cache_hit_ratio{model=\"tiny:latest\"} 0.75\n"));
    // The GGUF runner has no prefix cache: no series for it.
    assert!(!text.contains("ollmlx_prefix_cache_bytes{model=\"g:latest\"}"));
    assert!(text.ends_with('\n'));
}

#[test]
fn hit_ratio_is_absent_before_the_first_lookup() {
    let text = Metrics::default().render(&[LoadedSample {
        model: "m".into(),
        format: "mlx",
        memory_bytes: 0,
        prefix_cache: Some(PrefixCacheStats::default()),
    }]);
    assert!(text.contains("ollmlx_prefix_cache_hits_total{model=\"m\"} 0\n"));
    assert!(!text.contains("ollmlx_prefix_cache_hit_ratio{"));
}
