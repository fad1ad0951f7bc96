// The dashboard's view of the API: small, pure helpers with no DOM access.

/** GET a JSON endpoint; throws with the server's `error` text on a non-2xx status. */
export async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(await errorText(r));
  return r.json();
}

/** The `{"error": ...}` text of a failed response, or its status line. */
export async function errorText(r) {
  const body = await r.text();
  try {
    return JSON.parse(body).error || `${r.status} ${r.statusText}`;
  } catch {
    return body || `${r.status} ${r.statusText}`;
  }
}

/**
 * POSTs `body` and yields each NDJSON line of the streamed reply as an object. A line with
 * `error` (Ollama's in-band error after the stream started) is thrown.
 */
export async function* ndjson(path, body, signal) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  if (!r.ok) throw new Error(await errorText(r));
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield parseLine(line);
    }
    if (done) break;
  }
  if (buf.trim()) yield parseLine(buf.trim());
}

function parseLine(line) {
  const obj = JSON.parse(line);
  if (obj.error) throw new Error(obj.error);
  return obj;
}

/** Bytes as a short human size (decimal units, as `ollama list` prints them). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

/** "in 4 minutes" / "now" for an RFC 3339 time; "forever" for the far future Ollama uses. */
export function fromNow(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "—";
  const s = Math.round((t - now) / 1000);
  if (s > 10 * 365 * 86400) return "never";
  if (s <= 0) return "now";
  if (s < 90) return `in ${s} s`;
  if (s < 90 * 60) return `in ${Math.round(s / 60)} min`;
  return `in ${(s / 3600).toFixed(1)} h`;
}

/**
 * Parses Prometheus text exposition into `Map<name, [{labels, value}]>`. Comments, blank lines
 * and malformed lines are skipped; label values are unescaped.
 */
export function parsePrometheus(text) {
  const out = new Map();
  const re = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = re.exec(line);
    if (!m) continue;
    const value = Number(m[4]);
    if (Number.isNaN(value) && m[4] !== "NaN") continue;
    const labels = {};
    const lre = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = lre.exec(m[3] || "")) !== null) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}
