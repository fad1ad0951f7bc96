// The dashboard: polls the API, renders the panels, and drives pull, delete and chat. Every
// request goes to this page's own origin (the CSP's `connect-src 'self'` enforces it).
import { errorText, formatBytes, fromNow, getJSON, ndjson, parsePrometheus } from "/ui/api.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;

/** Creates an element with text content (never HTML, so model output cannot inject markup). */
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function setStatus(ok, text) {
  const s = $("status");
  s.dataset.state = ok ? "ok" : "down";
  s.textContent = text;
}

// --- Installed models ---------------------------------------------------------------------------

let shownModels = "";

async function refreshModels() {
  const { models } = await getJSON("/api/tags");
  models.sort((a, b) => a.name.localeCompare(b.name));
  // Re-render only on change, so a poll never resets an armed Delete button or the picker.
  const key = JSON.stringify(models);
  if (key === shownModels) return;
  shownModels = key;
  const body = $("models").tBodies[0];
  body.replaceChildren(
    ...models.map((m) => {
      const tr = el("tr");
      tr.dataset.model = m.name;
      tr.append(
        el("td", m.name, "name"),
        el("td", m.details?.format || "—"),
        el("td", formatBytes(m.size), "num"),
        el("td", [m.details?.parameter_size, m.details?.quantization_level].filter(Boolean).join(" · ") || "—"),
      );
      const caps = el("td");
      for (const c of m.capabilities || []) caps.append(el("span", c, "tag"));
      const actions = el("td");
      const del = el("button", "Delete", "ghost danger");
      del.type = "button";
      del.addEventListener("click", () => confirmDelete(del, m.name));
      actions.append(del);
      tr.append(caps, actions);
      return tr;
    }),
  );
  $("models-empty").hidden = models.length > 0;
  fillModelPicker(models.filter((m) => !(m.capabilities || []).length || m.capabilities.includes("completion")));
}

function fillModelPicker(models) {
  const pick = $("chat-model");
  const keep = pick.value;
  pick.replaceChildren(...models.map((m) => el("option", m.name)));
  if (models.some((m) => m.name === keep)) pick.value = keep;
}

/** Two clicks delete: the first arms the button for a few seconds. */
async function confirmDelete(button, name) {
  if (button.dataset.armed !== "1") {
    button.dataset.armed = "1";
    button.textContent = "Confirm";
    setTimeout(() => {
      button.dataset.armed = "";
      button.textContent = "Delete";
    }, 4000);
    return;
  }
  button.disabled = true;
  const r = await fetch("/api/delete", {
    method: "DELETE",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: name }),
  });
  if (!r.ok) {
    button.disabled = false;
    button.textContent = "Delete";
    button.title = await errorText(r);
    return;
  }
  shownModels = "";
  await refreshModels();
}

// --- Loaded models ------------------------------------------------------------------------------

async function refreshPs() {
  const { models } = await getJSON("/api/ps");
  $("ps").tBodies[0].replaceChildren(
    ...models.map((m) => {
      const tr = el("tr");
      tr.dataset.model = m.name;
      const mem = m.size_vram && m.size_vram !== m.size ? `${formatBytes(m.size)} (${formatBytes(m.size_vram)} GPU)` : formatBytes(m.size);
      const ends = el("td", fromNow(m.expires_at));
      ends.title = m.expires_at;
      tr.append(el("td", m.name, "name"), el("td", mem, "num"), el("td", m.context_length || "—", "num"), ends);
      return tr;
    }),
  );
  $("ps-empty").hidden = models.length > 0;
}

// --- Metrics ------------------------------------------------------------------------------------

// Which series to show, found by name pattern so the panel follows the exporter's naming.
const SERIES = [
  { label: "Requests", find: /(^|_)requests?_total$/, rate: true },
  { label: "Tokens out", find: /(output|generated|completion|eval)_tokens_total$/, rate: true },
  { label: "Tokens in", find: /(input|prompt)_tokens_total$/, rate: true },
  { label: "TTFT (mean)", find: /(ttft|time_to_first_token)[a-z_]*_seconds_sum$/, mean: true },
  { label: "Loaded models", find: /loaded_models$/ },
];
let lastMetrics = null;
let metricsGone = false;

function pick(series, re) {
  const name = [...series.keys()].find((n) => re.test(n));
  if (!name) return undefined;
  return { name, value: series.get(name).reduce((a, x) => a + x.value, 0) };
}

async function refreshMetrics() {
  if (metricsGone) return;
  const r = await fetch("/metrics", { headers: { Accept: "text/plain" } });
  if (r.status === 404) {
    // This build has no exporter: say so once and stop asking.
    metricsGone = true;
    const note = $("metrics-note");
    note.textContent = "This server has no /metrics endpoint; live metrics are unavailable.";
    note.hidden = false;
    $("metrics-card").dataset.state = "absent";
    return;
  }
  if (!r.ok) throw new Error(`/metrics: ${r.status}`);
  const series = parsePrometheus(await r.text());
  const now = performance.now();
  const rows = [];
  for (const s of SERIES) {
    const hit = pick(series, s.find);
    if (!hit) continue;
    let text;
    if (s.mean) {
      const count = series.get(hit.name.replace(/_sum$/, "_count"));
      const n = count ? count.reduce((a, x) => a + x.value, 0) : 0;
      text = n > 0 ? `${((hit.value / n) * 1000).toFixed(0)} ms` : "—";
    } else {
      text = Number.isInteger(hit.value) ? String(hit.value) : hit.value.toFixed(2);
      const prev = lastMetrics?.values.get(hit.name);
      if (s.rate && prev !== undefined) {
        const per = (hit.value - prev) / ((now - lastMetrics.at) / 1000);
        if (per > 0) text += ` (${per.toFixed(1)}/s)`;
      }
    }
    const dt = el("dt", s.label);
    dt.title = hit.name;
    rows.push(dt, el("dd", text));
  }
  lastMetrics = { at: now, values: new Map([...series].map(([k, v]) => [k, v.reduce((a, x) => a + x.value, 0)])) };
  $("metrics").replaceChildren(...rows);
  $("metrics-card").dataset.state = "live";
  const note = $("metrics-note");
  note.hidden = rows.length > 0;
  note.textContent = rows.length ? "" : "No recognised series yet.";
}

// --- Pull ---------------------------------------------------------------------------------------

async function pull(ev) {
  ev.preventDefault();
  const name = $("pull-name").value.trim();
  if (!name) return;
  const bar = $("pull-progress");
  const status = $("pull-status");
  $("pull-go").disabled = true;
  bar.hidden = false;
  bar.removeAttribute("value");
  status.dataset.state = "pulling";
  try {
    // One bar for the whole pull: the sum over every file (digest) seen so far.
    const parts = new Map();
    for await (const p of ndjson("/api/pull", { model: name, stream: true })) {
      if (p.total) {
        parts.set(p.digest || p.status, { total: p.total, completed: p.completed || 0 });
        const sum = (k) => [...parts.values()].reduce((a, x) => a + x[k], 0);
        bar.max = sum("total");
        bar.value = sum("completed");
        status.textContent = `${p.status}: ${formatBytes(bar.value)} of ${formatBytes(bar.max)}`;
      } else {
        status.textContent = p.status;
      }
    }
    // A finished pull leaves the bar full, so the outcome stays visible.
    if (!bar.hasAttribute("value")) bar.max = 1;
    bar.value = bar.max;
    status.textContent = `${name}: done`;
    status.dataset.state = "done";
    shownModels = "";
    await refreshModels();
  } catch (e) {
    bar.hidden = true;
    status.textContent = `${name}: ${e.message}`;
    status.dataset.state = "error";
  } finally {
    $("pull-go").disabled = false;
  }
}

// --- Chat ---------------------------------------------------------------------------------------

const history = [];
let chatAbort = null;

function bubble(role, text) {
  const b = el("div", text, `msg ${role}`);
  $("chat-log").append(b);
  return b;
}

async function send(ev) {
  ev?.preventDefault();
  const input = $("chat-input");
  const content = input.value.trim();
  const model = $("chat-model").value;
  if (!content || !model || chatAbort) return;
  input.value = "";
  history.push({ role: "user", content });
  bubble("user", content);
  const out = bubble("assistant", "");
  out.dataset.state = "streaming";
  out.dataset.chunks = "0";
  const stats = $("chat-stats");
  stats.textContent = "";
  chatAbort = new AbortController();
  $("chat-send").disabled = true;
  $("chat-stop").hidden = false;
  const max = Number($("chat-max").value) || undefined;
  let answer = "";
  try {
    const body = { model, messages: history, stream: true, options: { num_predict: max } };
    for await (const c of ndjson("/api/chat", body, chatAbort.signal)) {
      const piece = c.message?.content || "";
      if (piece) {
        answer += piece;
        out.textContent = answer;
        out.dataset.chunks = String(Number(out.dataset.chunks) + 1);
        $("chat-log").scrollTop = $("chat-log").scrollHeight;
      }
      if (c.done) {
        const tps = c.eval_duration ? (c.eval_count / (c.eval_duration / 1e9)).toFixed(1) : "?";
        const ttft = c.prompt_eval_duration ? `${(c.prompt_eval_duration / 1e6).toFixed(0)} ms prompt` : "";
        stats.textContent = [`${c.eval_count ?? "?"} tokens`, `${tps} tok/s`, ttft, `done: ${c.done_reason || "stop"}`]
          .filter(Boolean)
          .join(" · ");
        out.dataset.state = "done";
      }
    }
    if (out.dataset.state !== "done") throw new Error("the stream ended without a final line");
    history.push({ role: "assistant", content: answer });
  } catch (e) {
    out.dataset.state = "error";
    out.append(el("span", e.name === "AbortError" ? " [stopped]" : ` [error: ${e.message}]`, "err"));
    if (answer) history.push({ role: "assistant", content: answer });
  } finally {
    chatAbort = null;
    $("chat-send").disabled = false;
    $("chat-stop").hidden = true;
    refreshPs().catch(() => {});
  }
}

// --- Wiring -------------------------------------------------------------------------------------

async function tick() {
  try {
    await Promise.all([refreshModels(), refreshPs()]);
    setStatus(true, "running");
  } catch (e) {
    setStatus(false, `unreachable: ${e.message}`);
  }
  try {
    await refreshMetrics();
  } catch (e) {
    $("metrics-note").textContent = e.message;
    $("metrics-note").hidden = false;
  }
}

function start() {
  $("refresh").addEventListener("click", tick);
  $("pull-form").addEventListener("submit", pull);
  $("chat-form").addEventListener("submit", send);
  $("chat-stop").addEventListener("click", () => chatAbort?.abort());
  $("chat-clear").addEventListener("click", () => {
    history.length = 0;
    $("chat-log").replaceChildren();
    $("chat-stats").textContent = "";
  });
  $("chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) send(e);
  });
  getJSON("/api/version")
    .then((v) => ($("version").textContent = `Ollama API ${v.version}`))
    .catch(() => {});
  tick().then(() => (document.body.dataset.ready = "1"));
  setInterval(tick, POLL_MS);
}

start();
