//! The dashboard at `/ui` in a real headless Chromium, driven over the DevTools protocol by
//! tests/e2e/ui_check.py: no console errors, the fixture models listed, a chat streamed from the
//! tiny model, and a screenshot kept at target/ui-screenshots/dashboard.png (docs/ui.md); and a
//! pull from a local hub with a progress bar, then a delete, through the page.

use crate::hubs::*;
use crate::support::*;
use std::path::PathBuf;

/// The browser: `OLLMLX_TEST_CHROMIUM`, else `chromium` (Debian's package) or Chrome on `PATH`.
/// `None` (and a message) when there is none, unless every tool is required (scripts/test.sh and
/// CI, whose .ci/run installs Debian's `chromium`).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OLLMLX_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let found = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(move |d| d.join(name))
    })
    .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() {
            panic!("OLLMLX_REQUIRE_TOOLS is set but no chromium is on PATH (apt-get install chromium, or set OLLMLX_TEST_CHROMIUM)");
        }
        eprintln!(
            "skipping: no chromium on PATH (apt-get install chromium, or set OLLMLX_TEST_CHROMIUM)"
        );
    }
    found
}

#[test]
fn dashboard_lists_models_streams_a_chat_in_chromium_without_console_errors() {
    let Some(browser) = chromium() else { return };
    let Some(s) = server(&[]) else { return };
    let shot = repo_root().join("target/ui-screenshots/dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = e2e_check(
        &s,
        "ui_check.py",
        &[
            ("OLLMLX_TEST_MODEL", TINY),
            ("OLLMLX_TEST_CHROMIUM", browser.to_str().unwrap()),
            ("OLLMLX_UI_SCREENSHOT", shot.to_str().unwrap()),
        ],
    );
    eprintln!("{out}");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

#[test]
fn dashboard_pulls_with_a_progress_bar_and_deletes_in_chromium() {
    let Some(browser) = chromium() else { return };
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let rev = fx.join("hub/models--ollmlx-test--tiny-llama");
    let snapshot = rev.join("snapshots").join(
        std::fs::read_to_string(rev.join("refs/main"))
            .unwrap()
            .trim(),
    );
    let hub = HfHub::start(vec![HfRepo::from_dir("acme/tiny", &snapshot)]);
    // An empty HF cache and Ollama store: the pull writes only into this test's directory.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    std::fs::create_dir_all(&cache).unwrap();
    let s = TestServer::start(Options {
        hub: cache.clone(),
        python,
        env: vec![
            ("HF_ENDPOINT".into(), hub.url.clone()),
            (
                "OLLAMA_MODELS".into(),
                dir.path().join("models").display().to_string(),
            ),
            (
                "HF_TOKEN_PATH".into(),
                dir.path().join("token").display().to_string(),
            ),
        ],
    });
    let shot = repo_root().join("target/ui-screenshots/pull.png");
    let out = e2e_check(
        &s,
        "ui_check.py",
        &[
            ("OLLMLX_UI_FLOW", "pull"),
            ("OLLMLX_TEST_MODEL", "acme/tiny"),
            ("OLLMLX_TEST_CHROMIUM", browser.to_str().unwrap()),
            ("OLLMLX_UI_SCREENSHOT", shot.to_str().unwrap()),
        ],
    );
    eprintln!("{out}");
    assert!(
        hub.bytes_served("model.safetensors") > 0,
        "the weights came from the hub"
    );
    assert!(
        !cache.join("models--acme--tiny").exists(),
        "the delete left nothing in the cache"
    );
}
