#!/usr/bin/env bash
# Runs every test: the Rust suites (unit, handler, and process tests against the real MLX runner
# and llama-server on tiny models made here, including the official ollama/openai/anthropic
# Python clients, the ollama JavaScript client, and the /ui dashboard in headless Chromium, which
# must be installed), and the Python runner's pytest suite. On a
# fresh machine it first installs what the tests need: a pinned Python venv in .venv (mlx[cpu],
# mlx-lm, ...), the JS client (npm ci in tests/e2e/js), the test models in target/fixtures and
# llama-server.
#
#   scripts/test.sh            everything
#   scripts/test.sh -- <args>  extra arguments for `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# --- Python venv, pinned by mlx_backend/requirements.txt -------------------------------------
py=${PYTHON:-python3}
want=$(sha256sum mlx_backend/requirements.txt | cut -c1-16)
if [[ ! -x .venv/bin/python || "$(cat .venv/.ollmlx-stamp 2>/dev/null)" != "$want" ]]; then
  echo "== installing the test venv (.venv) =="
  "$py" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed (mlx-lm 0.32)"'
  rm -rf .venv
  "$py" -m venv .venv
  .venv/bin/python -m pip install --disable-pip-version-check -q -r mlx_backend/requirements.txt
  echo "$want" > .venv/.ollmlx-stamp
fi
export OLLMLX_TEST_PYTHON="$root/.venv/bin/python"

# --- The JavaScript client's check, pinned by tests/e2e/js/package-lock.json -------------------
if [[ ! -d tests/e2e/js/node_modules/ollama ]]; then
  echo "== installing the JS client (tests/e2e/js) =="
  (cd tests/e2e/js && npm ci --no-audit --no-fund --silent)
fi

# --- tmux, for the REPL test (tests/it/repl.rs types into a pseudo-terminal) ------------------
if ! command -v tmux >/dev/null; then
  echo "tmux is needed by the REPL test: install it (apt-get install tmux, brew install tmux)" >&2
  exit 1
fi
# --- Chromium, for the dashboard's browser test (tests/it/ui.rs); .ci/run installs it --------------
if [[ -z "${OLLMLX_TEST_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null \
  && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  echo "scripts/test.sh: the dashboard test needs Chromium: apt-get install chromium" \
    "(or set OLLMLX_TEST_CHROMIUM to a Chrome or Chromium binary)" >&2
  exit 1
fi

# --- Python lint (cheap; before the tests so their summaries close the output) ------------------
.venv/bin/ruff check mlx_backend tests bench
.venv/bin/ruff format --check mlx_backend tests bench

# --- Test models (cached under target/, rebuilt only when the fixture script changes) ---------
echo "== fixtures =="
"$OLLMLX_TEST_PYTHON" tests/fixtures/make_models.py target/fixtures
export OLLMLX_TEST_FIXTURES="$root/target/fixtures"
# --- llama-server (built once from the pinned llama-cpp-python sdist, cached per version) --------
echo "== llama-server =="
OLLMLX_TEST_LLAMA_SERVER=$(scripts/build-llama-server.sh)
export OLLMLX_TEST_LLAMA_SERVER
echo "$OLLMLX_TEST_LLAMA_SERVER"
# Cross-backend parity at the library level: tokenizer ids, f32 greedy tokens, embeddings.
"$OLLMLX_TEST_PYTHON" tests/fixtures/check_llama_server.py "$OLLMLX_TEST_LLAMA_SERVER" target/fixtures

# Tests must never skip for a missing tool here: fail instead.
export OLLMLX_REQUIRE_TOOLS=1

# --- Rust ----------------------------------------------------------------------------------------
echo "== cargo test =="
extra=()
if [[ "${1:-}" == "--" ]]; then shift; extra=("$@"); fi
cargo test --workspace --all-targets "${extra[@]}"

# --- Python runner -------------------------------------------------------------------------------
echo "== pytest (mlx_backend) =="
(cd mlx_backend && "$OLLMLX_TEST_PYTHON" -m pytest -q)
echo "dashboard screenshot: $root/target/ui-screenshots/dashboard.png"
