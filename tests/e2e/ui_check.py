"""Drives the dashboard at /ui in a real headless Chromium over the DevTools protocol.

Chromium talks CDP over a pair of pipes (``--remote-debugging-pipe``: it reads NUL-terminated
JSON on fd 3 and writes on fd 4), so the check needs no websocket library and no free port.

Two flows (OLLMLX_UI_FLOW), both ending with a screenshot and a check that the page logged no
console error, exception or failed load (CSP violations included) at any point:

- ``chat`` (default): the page lists the fixture models with format and size; the metrics panel
  shows series when ``/metrics`` answers 200 and says it is absent on 404; the page's Prometheus
  parser reads real exposition text; a chat with the tiny model streams in several chunks, ends
  with a final line, and the loaded model shows in the ps panel.
- ``pull``: the pull form pulls OLLMLX_TEST_MODEL (from a local hub) with a progress bar that
  ends full, the model appears in the list, and two clicks on Delete remove it.

Prints "all checks passed". Environment: OLLAMA_HOST (the daemon's URL), OLLMLX_TEST_MODEL,
OLLMLX_TEST_CHROMIUM (the browser), OLLMLX_UI_SCREENSHOT (where to write the PNG),
OLLMLX_UI_FLOW.
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HOST = os.environ["OLLAMA_HOST"].rstrip("/")
MODEL = os.environ["OLLMLX_TEST_MODEL"]
CHROMIUM = os.environ["OLLMLX_TEST_CHROMIUM"]
SHOT = os.environ["OLLMLX_UI_SCREENSHOT"]


class Browser:
    """A headless Chromium and one page, with a blocking CDP client over the debugging pipe."""

    def __init__(self, profile):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Chromium expects its ends on fds 3 and 4 exactly: move ours clear of 3..6 first.
        fds = [
            fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 10)
            for f in (to_chrome_r, to_chrome_w, from_chrome_r, from_chrome_w)
        ]
        for f in (to_chrome_r, to_chrome_w, from_chrome_r, from_chrome_w):
            os.close(f)
        child_in, self._w, self._r, child_out = fds
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)
        self.log = os.path.join(profile, "chromium.log")
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--remote-debugging-pipe",
                # Root in a container has no user namespace for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1300",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for f in (3, 4, child_in, child_out, log):
            os.close(f)
        self._reader = os.fdopen(self._r, "rb", buffering=0)
        self._buf = b""
        self._id = 0
        self.events = []
        self.session = None

    def _recv(self, deadline):
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from Chromium")
            chunk = self._reader.read(1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit {self.proc.poll()})")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=30):
        """Sends one command and returns its result; events that arrive meanwhile are kept."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def eval(self, expr, timeout=30):
        """Evaluates JavaScript in the page (awaiting promises) and returns its JSON value."""
        r = self.call(
            "Runtime.evaluate",
            {"expression": expr, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {expr}")

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (RuntimeError, TimeoutError, OSError) as e:
            print(f"Browser.close: {e}", file=sys.stderr)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def errors(events):
    """Console errors, uncaught exceptions and failed loads (CSP violations are console errors)."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.exceptionThrown":
            out.append(f"exception: {p['exceptionDetails']}")
        elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            out.append(f"console.{p['type']}: {[a.get('value') for a in p['args']]}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry = p["entry"]
            # This build's /metrics may not exist yet: the page must then show a note (checked
            # below), and the browser logs the 404 itself.
            if entry.get("source") == "network" and entry.get("url", "").endswith("/metrics"):
                continue
            out.append(f"log: {entry}")
    return out


def metrics_status():
    try:
        with urllib.request.urlopen(f"{HOST}/metrics", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def open_page(profile):
    """A browser on the dashboard, after its first poll; events are recorded from the start."""
    b = Browser(profile)
    target = b.call("Target.createTarget", {"url": "about:blank"}, session=False)
    b.session = b.call(
        "Target.attachToTarget",
        {"targetId": target["targetId"], "flatten": True},
        session=False,
    )["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        b.call(f"{domain}.enable")
    b.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 1300, "deviceScaleFactor": 1, "mobile": False},
    )
    b.call("Page.navigate", {"url": f"{HOST}/ui"})
    b.wait_for("document.body && document.body.dataset.ready === '1'", "the first poll")
    return b


def tag_names():
    with urllib.request.urlopen(f"{HOST}/api/tags", timeout=30) as r:
        return sorted(m["name"] for m in json.load(r)["models"])


def shown_models(b):
    """The installed-models table's name, format and size cells."""
    return b.eval(
        "[...document.querySelectorAll('#models tbody tr')].map(r => "
        "[...r.cells].slice(0, 3).map(c => c.textContent))"
    )


def check_chat(b):
    names = tag_names()
    # Exactly the test model: "tiny-llama-4bit:latest" sorts before "tiny-llama:latest".
    tiny = MODEL if MODEL in names else f"{MODEL}:latest"
    assert tiny in names, names

    # 1. The installed models, as /api/tags has them, with format and size.
    shown = shown_models(b)
    assert sorted(r[0] for r in shown) == names, (shown, names)
    by_name = {r[0]: r for r in shown}
    assert by_name[tiny][1] == "safetensors", by_name[tiny]
    assert by_name[tiny][2] not in ("", "—"), by_name[tiny]
    assert b.eval("document.getElementById('status').dataset.state") == "ok"
    print(f"ok: the page lists {len(names)} models")

    # 2. The metrics panel matches what /metrics answers.
    status = metrics_status()
    want = "live" if status == 200 else "absent"
    b.wait_for(
        f"document.getElementById('metrics-card').dataset.state === '{want}'",
        f"the metrics panel to be {want} (/metrics: {status})",
    )
    print(f"ok: metrics panel {want} (/metrics answers {status})")
    # The page's Prometheus parser, in this browser, on exposition text with labels,
    # escapes, comments and histograms.
    sample = (
        "# HELP ollmlx_requests_total Requests.\n"
        "# TYPE ollmlx_requests_total counter\n"
        'ollmlx_requests_total{route="/api/chat",code="200"} 3\n'
        'ollmlx_requests_total{route="/api/x\\"y",code="500"} 1\n'
        "ollmlx_ttft_seconds_sum 0.5\n"
        "ollmlx_ttft_seconds_count 4\n"
        "not a sample\n"
    )
    parsed = b.eval(
        "import('/ui/api.js').then(m => { const s = m.parsePrometheus("
        + json.dumps(sample)
        + "); return {req: s.get('ollmlx_requests_total').reduce((a, x) => a + x.value, 0),"
        " label: s.get('ollmlx_requests_total')[1].labels.route,"
        " n: s.size}; })"
    )
    assert parsed == {"req": 4, "label": '/api/x"y', "n": 3}, parsed
    print("ok: the Prometheus parser reads labels, escapes and histograms")

    # 3. A chat streams from the tiny model into the page.
    b.eval(
        "(() => {"
        f"const pick = document.getElementById('chat-model'); pick.value = {json.dumps(tiny)};"
        "if (pick.value !== " + json.dumps(tiny) + ") throw new Error('model not in picker');"
        "document.getElementById('chat-max').value = '24';"
        "document.getElementById('chat-input').value = 'Hello, who are you?';"
        "document.getElementById('chat-send').click();"
        "})()"
    )
    b.wait_for(
        "document.querySelector('.msg.assistant')?.dataset.state !== 'streaming'",
        "the chat answer to finish",
        timeout=120,
    )
    msg = b.eval(
        "(() => { const m = document.querySelector('.msg.assistant');"
        " return {state: m.dataset.state, chunks: Number(m.dataset.chunks), text: m.textContent,"
        " stats: document.getElementById('chat-stats').textContent}; })()"
    )
    assert msg["state"] == "done", msg
    assert msg["text"].strip(), msg
    assert msg["chunks"] > 1, f"the answer did not stream: {msg}"
    assert "tokens" in msg["stats"], msg
    print(f"ok: chat streamed {msg['chunks']} chunks: {msg['text'][:60]!r}")

    # 4. The model the chat loaded shows under "Loaded models".
    b.wait_for(
        "[...document.querySelectorAll('#ps tbody tr')].some(r => r.dataset.model === "
        + json.dumps(tiny)
        + ")",
        "the loaded model in the ps panel",
    )
    print("ok: the loaded model is listed with its memory and expiry")


def check_pull_and_delete(b):
    """Pulls MODEL (served by a local hub) through the form, then deletes it with two clicks."""
    name = f"{MODEL}:latest"
    assert name not in tag_names()
    b.eval(
        "(() => {"
        f"document.getElementById('pull-name').value = {json.dumps(MODEL)};"
        "document.getElementById('pull-go').click(); })()"
    )
    b.wait_for(
        "document.getElementById('pull-status').dataset.state !== 'pulling'",
        "the pull to finish",
        timeout=120,
    )
    bar = b.eval(
        "(() => { const p = document.getElementById('pull-progress');"
        " const s = document.getElementById('pull-status');"
        " return {hidden: p.hidden, max: p.max, value: p.value, state: s.dataset.state,"
        " text: s.textContent}; })()"
    )
    assert bar["state"] == "done", bar
    assert not bar["hidden"] and bar["max"] > 1 and bar["value"] == bar["max"], bar
    with urllib.request.urlopen(f"{HOST}/api/tags", timeout=30) as r:
        size = next(m["size"] for m in json.load(r)["models"] if m["name"] == name)
    assert bar["max"] >= size / 2, f"the bar covers the whole pull ({size} bytes): {bar}"
    b.wait_for(
        "[...document.querySelectorAll('#models tbody tr')].some(r => r.dataset.model === "
        + json.dumps(name)
        + ")",
        "the pulled model in the list",
    )
    print(f"ok: pulled {name} with a progress bar to {bar['max']} bytes")

    row = f"document.querySelector('#models tr[data-model=\"{name}\"] button')"
    b.eval(f"{row}.click()")
    assert b.eval(f"{row}.textContent") == "Confirm", "the first click only arms Delete"
    assert name in tag_names()
    b.eval(f"{row}.click()")
    b.wait_for(f"!{row}", "the deleted model to leave the list")
    assert name not in tag_names()
    print(f"ok: deleted {name} with two clicks")


def main():
    flow = os.environ.get("OLLMLX_UI_FLOW", "chat")
    profile = tempfile.mkdtemp(prefix="ollmlx-ui-")
    b = None
    try:
        b = open_page(profile)
        if flow == "chat":
            check_chat(b)
        else:
            check_pull_and_delete(b)
        png = base64.b64decode(b.call("Page.captureScreenshot", {"format": "png"})["data"])
        os.makedirs(os.path.dirname(os.path.abspath(SHOT)), exist_ok=True)
        with open(SHOT, "wb") as f:
            f.write(png)
        print(f"ok: screenshot {SHOT} ({len(png)} bytes)")
        # One more round-trip so late events are in, then the console: nothing went wrong.
        b.eval("1")
        bad = errors(b.events)
        assert not bad, "console errors:\n" + "\n".join(bad)
        print("ok: no console errors")
    except BaseException:
        log = os.path.join(profile, "chromium.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                print("chromium's log:\n" + f.read()[-4000:], file=sys.stderr)
        raise
    finally:
        if b:
            b.close()
        shutil.rmtree(profile, ignore_errors=True)
    print("all checks passed")


if __name__ == "__main__":
    sys.exit(main())
