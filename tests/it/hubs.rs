//! Local stand-ins for the two places `ollmlx pull` downloads from, speaking their real protocols
//! (docs: pull-notes.md):
//!
//! - [`HfHub`]: the Hugging Face hub. Revision info, the recursive tree (paged on request),
//!   `resolve` for files: small files directly, LFS files as a 302 to a "CDN" on another port
//!   with a signed query string. Gated and unknown repos, unknown revisions and missing files
//!   answer with the hub's status codes, `X-Error-Code` headers and `{"error": ...}` bodies.
//! - [`Registry`]: the Ollama registry. Manifests, blob `HEAD`s, and blob `GET`s as a 307 to the
//!   CDN.
//!
//! The CDN serves `Range` requests (`bytes=N-`, `bytes=N-M`, `bytes=-N`) with 206 and
//! `Content-Range`, and refuses (403) any URL without a signature the server handed out.
//!
//! Each server runs its two listeners (itself and its CDN) on `127.0.0.1:0` in a thread of its
//! own with its own tokio runtime, so plain `#[test]` functions can use them with
//! `reqwest::blocking`. Dropping the server stops it and closes every connection.
//!
//! Both servers record every request ([`Hit`]) and take faults at any time through a
//! [`Control`]: they deref to theirs, and [`HfHub::control`] / [`Registry::control`] hand out a
//! clone for another thread.
//!
//! Faults and byte counters name a file by a *key*:
//! - hub: the file's path in its repo (`model.safetensors`), or `org/name/path` when several repos
//!   hold the same path;
//! - registry: a blob's digest (`sha256:<hex>` or the bare hex), or a manifest as
//!   `namespace/model:tag`.

// Not every test uses every helper; handlers return an error `Response` early as `Err`.
#![allow(dead_code, clippy::result_large_err)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::IntoFuture;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Files at least this large are LFS files whatever their name.
pub const LFS_MIN_SIZE: usize = 1024 * 1024;
/// The body chunk at full speed.
const CHUNK: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------------
// Recording and fault injection, shared by both servers
// ------------------------------------------------------------------------------------------------

/// Which of a server's two listeners answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The hub, or the registry itself: the URL a client is configured with.
    Hub,
    /// The CDN the hub and registry redirect downloads to (another port, so another host).
    Cdn,
}

/// One request a server received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub listener: Listener,
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The URL path, percent-decoded.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Whether the request carried an `Authorization` header (any value).
    pub authorization: bool,
    /// The `Range` header, if any.
    pub range: Option<String>,
    pub status: u16,
    /// The file the request was about, when it named one: `org/name/path` (hub), `sha256:<hex>`
    /// (registry blob) or `namespace/model:tag` (registry manifest).
    pub file: Option<String>,
    /// Body bytes of that file sent in answer (so far, for a response still streaming).
    pub bytes: u64,
}

#[derive(Default)]
struct Faults {
    drop_after: HashMap<String, u64>,
    corrupt: HashSet<String>,
    /// key -> (status, how many more requests; `None`: every one).
    fail: HashMap<String, (u16, Option<u32>)>,
    /// Bytes per second for every body; 0: full speed.
    slow: u64,
    /// Hub only: entries per page of a tree listing; 0: one page.
    tree_page: usize,
}

struct Logged {
    hit: Hit,
    names: Vec<String>,
    bytes: Arc<AtomicU64>,
}

#[derive(Default)]
struct ControlState {
    faults: Faults,
    log: Vec<Logged>,
}

/// The request log and the fault switches of one server. Cheap to clone; every clone controls
/// the same server, from any thread, at any time (a fault applies to the requests that start
/// after it is set; `slow` also to bodies already streaming).
#[derive(Clone, Default)]
pub struct Control(Arc<Mutex<ControlState>>);

impl Control {
    fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `GET` that sends this file's bytes sends `n_bytes` of them (of the range asked
    /// for) and then kills the connection. Once.
    pub fn drop_after(&self, key: &str, n_bytes: u64) {
        self.lock()
            .faults
            .drop_after
            .insert(key.to_owned(), n_bytes);
    }

    /// Serves this file with one byte flipped (the middle one of the whole file, so ranged
    /// requests see the same corruption), under its true `ETag`s and digests, until cleared.
    pub fn corrupt(&self, key: &str) {
        self.lock().faults.corrupt.insert(key.to_owned());
    }

    /// Sends every body at about `bytes_per_sec` (0: full speed), including those already
    /// streaming.
    pub fn slow(&self, bytes_per_sec: u64) {
        self.lock().faults.slow = bytes_per_sec;
    }

    /// Answers every request for this file on the hub or registry listener (`HEAD` and `GET` of
    /// `resolve`, of a blob, or of a manifest) with `status` and an error body, until cleared.
    pub fn fail_status(&self, key: &str, status: u16) {
        self.lock()
            .faults
            .fail
            .insert(key.to_owned(), (status, None));
    }

    /// As [`Control::fail_status`], for the next `times` requests only.
    pub fn fail_status_times(&self, key: &str, status: u16, times: u32) {
        self.lock()
            .faults
            .fail
            .insert(key.to_owned(), (status, Some(times)));
    }

    /// Hub only: lists trees `n` entries a page, linked by `Link: <...>; rel="next"` (0: one page).
    pub fn tree_page_size(&self, n: usize) {
        self.lock().faults.tree_page = n;
    }

    /// Removes every fault set for this key.
    pub fn clear(&self, key: &str) {
        let f = &mut self.lock().faults;
        f.drop_after.remove(key);
        f.corrupt.remove(key);
        f.fail.remove(key);
    }

    /// Removes every fault, `slow` and the tree page size included.
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// Every request so far, oldest first.
    pub fn hits(&self) -> Vec<Hit> {
        self.lock()
            .log
            .iter()
            .map(|l| Hit {
                bytes: l.bytes.load(Ordering::SeqCst),
                ..l.hit.clone()
            })
            .collect()
    }

    /// The requests about one file (by key).
    pub fn hits_for(&self, key: &str) -> Vec<Hit> {
        let s = self.lock();
        s.log
            .iter()
            .filter(|l| l.names.iter().any(|n| n == key))
            .map(|l| Hit {
                bytes: l.bytes.load(Ordering::SeqCst),
                ..l.hit.clone()
            })
            .collect()
    }

    /// Forgets the requests so far (the byte counters too).
    pub fn clear_hits(&self) {
        self.lock().log.clear();
    }

    /// Body bytes of this file sent so far, over every request and both listeners.
    pub fn bytes_served(&self, key: &str) -> u64 {
        self.hits_for(key).iter().map(|h| h.bytes).sum()
    }

    /// Body bytes of every file sent so far.
    pub fn total_bytes_served(&self) -> u64 {
        self.hits().iter().map(|h| h.bytes).sum()
    }

    fn take_drop(&self, names: &[String]) -> Option<u64> {
        let mut s = self.lock();
        let key = names
            .iter()
            .find(|n| s.faults.drop_after.contains_key(*n))?
            .clone();
        s.faults.drop_after.remove(&key)
    }

    fn is_corrupt(&self, names: &[String]) -> bool {
        let s = self.lock();
        names.iter().any(|n| s.faults.corrupt.contains(n))
    }

    fn failure(&self, names: &[String]) -> Option<u16> {
        let mut s = self.lock();
        let key = names
            .iter()
            .find(|n| s.faults.fail.contains_key(*n))?
            .clone();
        let (status, times) = s.faults.fail[&key];
        match times {
            None => {}
            Some(0 | 1) => {
                s.faults.fail.remove(&key);
            }
            Some(n) => {
                s.faults.fail.insert(key, (status, Some(n - 1)));
            }
        }
        Some(status)
    }

    fn rate(&self) -> u64 {
        self.lock().faults.slow
    }

    fn tree_page(&self) -> usize {
        self.lock().faults.tree_page
    }

    fn record(
        &self,
        listener: Listener,
        r: &Req,
        status: StatusCode,
        about: Option<About>,
        bytes: Arc<AtomicU64>,
    ) {
        let (file, names) = match about {
            Some(a) => (Some(a.file), a.names),
            None => (None, Vec::new()),
        };
        let hit = Hit {
            listener,
            method: r.method.to_string(),
            path: r.path.clone(),
            query: r.raw_query.clone(),
            authorization: r.headers.contains_key(header::AUTHORIZATION),
            range: r.header(header::RANGE).map(str::to_owned),
            status: status.as_u16(),
            file,
            bytes: 0,
        };
        self.lock().log.push(Logged { hit, names, bytes });
    }
}

/// The file a request was about: its canonical name and every key that names it.
#[derive(Clone)]
struct About {
    file: String,
    names: Vec<String>,
}

/// The parts of a request the handlers look at.
struct Req {
    method: Method,
    path: String,
    raw_query: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
}

impl Req {
    fn new(req: &axum::extract::Request) -> Req {
        let raw_query = req.uri().query().map(str::to_owned);
        let query = raw_query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Req {
            method: req.method().clone(),
            path: percent_decode(req.uri().path()),
            raw_query,
            query,
            headers: req.headers().clone(),
        }
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `sha256:<hex>` of some bytes, as Ollama names blobs.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The lowercase hex SHA-256 of some bytes (what the hub publishes as an LFS file's `oid`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Git's object id for a blob of these bytes: SHA-1 of `blob <len>\0<bytes>` (the hub's `ETag`
/// for small files).
pub fn git_blob_sha1(bytes: &[u8]) -> String {
    let mut data = format!("blob {}\0", bytes.len()).into_bytes();
    data.extend_from_slice(bytes);
    hex::encode(sha1(&data))
}

/// SHA-1 (FIPS 180-4), enough for git object ids; the crate has no SHA-1 dependency.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// A byte range asked for with `Range`: `Ok(None)` for the whole file, `Err` when it cannot be
/// satisfied (416). Unparsable or multi-range headers are ignored (the whole file), as HTTP allows.
fn parse_range(value: Option<&str>, len: usize) -> Result<Option<(usize, usize)>, ()> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // A suffix: the last N bytes.
        let Ok(n) = b.parse::<usize>() else {
            return Ok(None);
        };
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len)
    } else {
        let Ok(start) = a.parse::<usize>() else {
            return Ok(None);
        };
        let end = if b.is_empty() {
            len
        } else {
            match b.parse::<usize>() {
                Ok(last) if last >= start => (last + 1).min(len),
                _ => return Ok(None),
            }
        };
        if start >= len {
            return Err(());
        }
        (start, end)
    };
    Ok(Some((start, end)))
}

/// Serves a file's bytes (or, for `HEAD`, its headers) with `Range` support, applying the
/// `corrupt`, `drop_after` and `slow` faults and counting the body bytes sent into `counter`.
fn serve_bytes(
    ctl: &Control,
    r: &Req,
    data: &Bytes,
    names: &[String],
    mut headers: HeaderMap,
    counter: &Arc<AtomicU64>,
) -> Response {
    let data = if ctl.is_corrupt(names) && !data.is_empty() {
        let mut v = data.to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0xFF;
        Bytes::from(v)
    } else {
        data.clone()
    };
    let len = data.len();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (status, body) = match parse_range(r.header(header::RANGE), len) {
        Err(()) => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).unwrap(),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response();
        }
        Ok(None) => (StatusCode::OK, data),
        Ok(Some((start, end))) => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).unwrap(),
            );
            (StatusCode::PARTIAL_CONTENT, data.slice(start..end))
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/octet-stream"));
    if r.method == Method::HEAD {
        return (status, headers, Body::empty()).into_response();
    }
    let cut_at = ctl
        .take_drop(names)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let body = body_stream(BodyState {
        data: body,
        pos: 0,
        cut_at,
        ctl: ctl.clone(),
        counter: counter.clone(),
        done: false,
    });
    (status, headers, body).into_response()
}

struct BodyState {
    data: Bytes,
    pos: usize,
    cut_at: Option<usize>,
    ctl: Control,
    counter: Arc<AtomicU64>,
    done: bool,
}

/// A body sent in chunks, at the `slow` rate, cut after `cut_at` bytes by an error (which makes
/// hyper drop the connection mid-body).
fn body_stream(state: BodyState) -> Body {
    Body::from_stream(futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if st.cut_at.is_some_and(|cut| st.pos >= cut) {
            // Give hyper a moment to flush what was sent before the connection goes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            st.done = true;
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "injected drop");
            return Some((Err(e), st));
        }
        if st.pos >= st.data.len() {
            return None;
        }
        let rate = st.ctl.rate();
        let mut n = if rate > 0 {
            usize::try_from(rate / 10).unwrap_or(CHUNK).clamp(1, CHUNK)
        } else {
            CHUNK
        };
        n = n.min(st.data.len() - st.pos);
        if let Some(cut) = st.cut_at {
            n = n.min(cut - st.pos);
        }
        if rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        let chunk = st.data.slice(st.pos..st.pos + n);
        st.pos += n;
        st.counter.fetch_add(n as u64, Ordering::SeqCst);
        Some((Ok::<_, std::io::Error>(chunk), st))
    }))
}

fn json_response(status: StatusCode, headers: HeaderMap, body: &Value) -> Response {
    let mut headers = headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    (status, headers, body.to_string()).into_response()
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

// ------------------------------------------------------------------------------------------------
// The CDN, shared by both servers
// ------------------------------------------------------------------------------------------------

/// What a signed CDN URL serves.
#[derive(Clone)]
struct CdnEntry {
    /// The last path segment of the URL (`/cdn/<name>`).
    name: String,
    data: Bytes,
    about: About,
    etag: String,
}

#[derive(Clone)]
struct CdnState {
    ctl: Control,
    /// sig -> what it opens.
    sigs: Arc<Mutex<HashMap<String, CdnEntry>>>,
}

impl CdnState {
    /// A new signed URL (path and query, to put after the CDN's base URL) for `entry`.
    fn sign(&self, entry: CdnEntry) -> String {
        let sig = random_hex();
        let path = format!("/cdn/{}?sig={sig}", entry.name);
        self.sigs.lock().unwrap().insert(sig, entry);
        path
    }
}

async fn cdn_handler(State(s): State<CdnState>, req: axum::extract::Request) -> Response {
    let r = Req::new(&req);
    let counter = Arc::new(AtomicU64::new(0));
    let (response, about) = cdn_route(&s, &r, &counter);
    s.ctl
        .record(Listener::Cdn, &r, response.status(), about, counter);
    response
}

fn cdn_route(s: &CdnState, r: &Req, counter: &Arc<AtomicU64>) -> (Response, Option<About>) {
    let forbidden = |msg: &str| {
        let body = json!({ "error": msg });
        (
            json_response(StatusCode::FORBIDDEN, HeaderMap::new(), &body),
            None,
        )
    };
    let Some(name) = r.path.strip_prefix("/cdn/") else {
        return (StatusCode::NOT_FOUND.into_response(), None);
    };
    if !r.is_read() {
        return (StatusCode::METHOD_NOT_ALLOWED.into_response(), None);
    }
    let Some(sig) = r.query.get("sig").filter(|s| !s.is_empty()) else {
        return forbidden("missing signature");
    };
    let Some(entry) = s.sigs.lock().unwrap().get(sig).cloned() else {
        return forbidden("invalid signature");
    };
    if entry.name != name {
        return forbidden("signature does not match the object");
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, hv(&entry.etag));
    let response = serve_bytes(&s.ctl, r, &entry.data, &entry.about.names, headers, counter);
    (response, Some(entry.about))
}

// ------------------------------------------------------------------------------------------------
// The server thread
// ------------------------------------------------------------------------------------------------

/// Two listeners served in a thread of their own; stopped (every connection closed) on drop.
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(
        main: std::net::TcpListener,
        main_app: Router,
        cdn: std::net::TcpListener,
        cdn_app: Router,
    ) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        main.set_nonblocking(true).unwrap();
        cdn.set_nonblocking(true).unwrap();
        let thread = std::thread::Builder::new()
            .name("test-hub".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let main = tokio::net::TcpListener::from_std(main).unwrap();
                    let cdn = tokio::net::TcpListener::from_std(cdn).unwrap();
                    tokio::select! {
                        _ = axum::serve(main, main_app).into_future() => {}
                        _ = axum::serve(cdn, cdn_app).into_future() => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task, mid-body or idle.
                drop(rt);
            })
            .unwrap();
        Server {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bind() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

// ------------------------------------------------------------------------------------------------
// The Hugging Face hub
// ------------------------------------------------------------------------------------------------

/// A model repository on the fake hub.
#[derive(Debug, Clone, Default)]
pub struct HfRepo {
    /// `org/name`.
    pub id: String,
    /// The commit `main` points at: 40 hex digits. Empty: derived from the id and the files
    /// ([`HfRepo::commit_id`]).
    pub commit: String,
    /// `(path in the repo, bytes)`; paths use `/` and may have folders.
    pub files: Vec<(String, Vec<u8>)>,
    /// When set, the repo is gated: requests need `Authorization: Bearer <this>`.
    pub gated_token: Option<String>,
}

impl HfRepo {
    /// A public repo with an automatic commit.
    pub fn new(id: &str, files: Vec<(&str, Vec<u8>)>) -> HfRepo {
        HfRepo {
            id: id.to_owned(),
            files: files.into_iter().map(|(p, b)| (p.to_owned(), b)).collect(),
            ..HfRepo::default()
        }
    }

    /// The repo with the files of a snapshot folder (symlinks followed, sub-folders included),
    /// e.g. `target/fixtures/hub/models--ollmlx-test--tiny-llama/snapshots/<rev>/`. When the
    /// folder's name is a commit (40 hex digits), that is the repo's commit.
    pub fn from_dir(id: &str, dir: &Path) -> HfRepo {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
            let entries =
                std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            for entry in entries {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                let rel = format!("{prefix}{name}");
                // fs::metadata follows symlinks, as the snapshot's links into blobs/ need.
                let meta =
                    std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if meta.is_dir() {
                    walk(&path, &format!("{rel}/"), out);
                } else {
                    out.push((rel, std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, "", &mut files);
        files.sort();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let commit = if is_commit(&name) {
            name
        } else {
            String::new()
        };
        HfRepo {
            id: id.to_owned(),
            commit,
            files,
            gated_token: None,
        }
    }

    /// Makes the repo gated behind `token`.
    pub fn gated(mut self, token: &str) -> HfRepo {
        self.gated_token = Some(token.to_owned());
        self
    }

    /// The commit the hub reports: [`HfRepo::commit`], or one derived from the id and files.
    pub fn commit_id(&self) -> String {
        if !self.commit.is_empty() {
            return self.commit.clone();
        }
        let mut seed = format!("commit {}\0", self.id).into_bytes();
        for (path, bytes) in &self.files {
            seed.extend_from_slice(path.as_bytes());
            seed.push(0);
            seed.extend_from_slice(git_blob_sha1(bytes).as_bytes());
        }
        hex::encode(sha1(&seed))
    }

    /// The bytes of one file.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.as_slice())
    }
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the hub stores a file in LFS: weights by extension, anything of 1 MiB or more.
pub fn is_lfs(path: &str, size: usize) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(ext, "safetensors" | "bin" | "gguf") || size >= LFS_MIN_SIZE
}

/// The git-lfs pointer file the repo's git history holds for an LFS file.
fn lfs_pointer(sha256: &str, size: usize) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

struct HubFile {
    path: String,
    data: Bytes,
    sha256: String,
    /// The git blob id of the bytes (small files) or of the LFS pointer (LFS files).
    oid: String,
    lfs: bool,
    pointer_size: usize,
    about: About,
}

struct HubRepo {
    id: String,
    commit: String,
    gated_token: Option<String>,
    files: Vec<HubFile>,
}

struct HubState {
    url: String,
    cdn_url: String,
    repos: Vec<HubRepo>,
    ctl: Control,
    cdn: CdnState,
}

/// A fake Hugging Face hub: point `HF_ENDPOINT` at [`HfHub::url`]. Derefs to its [`Control`].
pub struct HfHub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The CDN's `http://127.0.0.1:PORT` (another port: another host, for redirects).
    pub cdn_url: String,
    control: Control,
    repos: Vec<HfRepo>,
    _server: Server,
}

impl std::ops::Deref for HfHub {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl HfHub {
    pub fn start(repos: Vec<HfRepo>) -> HfHub {
        let (main, addr) = bind();
        let (cdn, cdn_addr) = bind();
        let url = format!("http://{addr}");
        let cdn_url = format!("http://{cdn_addr}");
        let control = Control::default();
        let cdn_state = CdnState {
            ctl: control.clone(),
            sigs: Arc::default(),
        };
        let hub_repos = repos
            .iter()
            .map(|repo| HubRepo {
                id: repo.id.clone(),
                commit: repo.commit_id(),
                gated_token: repo.gated_token.clone(),
                files: repo
                    .files
                    .iter()
                    .map(|(path, bytes)| {
                        let sha256 = sha256_hex(bytes);
                        let lfs = is_lfs(path, bytes.len());
                        let pointer = lfs_pointer(&sha256, bytes.len());
                        let oid = if lfs {
                            git_blob_sha1(pointer.as_bytes())
                        } else {
                            git_blob_sha1(bytes)
                        };
                        HubFile {
                            path: path.clone(),
                            data: Bytes::from(bytes.clone()),
                            sha256,
                            oid,
                            lfs,
                            pointer_size: pointer.len(),
                            about: About {
                                file: format!("{}/{path}", repo.id),
                                names: vec![path.clone(), format!("{}/{path}", repo.id)],
                            },
                        }
                    })
                    .collect(),
            })
            .collect();
        let state = Arc::new(HubState {
            url: url.clone(),
            cdn_url: cdn_url.clone(),
            repos: hub_repos,
            ctl: control.clone(),
            cdn: cdn_state.clone(),
        });
        let app = Router::new().fallback(hub_handler).with_state(state);
        let cdn_app = Router::new().fallback(cdn_handler).with_state(cdn_state);
        HfHub {
            url,
            cdn_url,
            control,
            repos,
            _server: Server::start(main, app, cdn, cdn_app),
        }
    }

    /// A handle on this hub's log and faults, for another thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The commit a repo's `main` points at.
    pub fn commit(&self, id: &str) -> String {
        self.repo(id).commit_id()
    }

    /// A repo as served.
    pub fn repo(&self, id: &str) -> &HfRepo {
        self.repos
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no repo {id}"))
    }
}

async fn hub_handler(State(s): State<Arc<HubState>>, req: axum::extract::Request) -> Response {
    let r = Req::new(&req);
    let counter = Arc::new(AtomicU64::new(0));
    let (response, about) = match s.route(&r, &counter) {
        Ok(ok) => ok,
        Err(e) => (e, None),
    };
    s.ctl
        .record(Listener::Hub, &r, response.status(), about, counter);
    response
}

/// The hub's error answer: status, `X-Error-Code`, `X-Error-Message` and `{"error": message}`.
fn hf_error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(code) = code {
        headers.insert("x-error-code", hv(code));
    }
    headers.insert("x-error-message", hv(message));
    json_response(status, headers, &json!({ "error": message }))
}

impl HubState {
    fn route(
        &self,
        r: &Req,
        counter: &Arc<AtomicU64>,
    ) -> Result<(Response, Option<About>), Response> {
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        if !r.is_read() {
            return Err(StatusCode::METHOD_NOT_ALLOWED.into_response());
        }
        match segs.as_slice() {
            ["api", "models", org, name, "revision", rev @ ..] if !rev.is_empty() => {
                let repo = self.repo(r, org, name)?;
                let commit = self.revision(repo, &rev.join("/"))?;
                let gated: Value = if repo.gated_token.is_some() {
                    json!("manual")
                } else {
                    json!(false)
                };
                let body = json!({
                    "_id": &commit[..24],
                    "id": repo.id,
                    "modelId": repo.id,
                    "private": false,
                    "gated": gated,
                    "disabled": false,
                    "sha": commit,
                    "lastModified": "2025-01-01T00:00:00.000Z",
                    "siblings": repo.files.iter().map(|f| json!({"rfilename": f.path})).collect::<Vec<_>>(),
                });
                Ok((json_response(StatusCode::OK, HeaderMap::new(), &body), None))
            }
            ["api", "models", org, name, "tree", rev, under @ ..] => {
                let repo = self.repo(r, org, name)?;
                let commit = self.revision(repo, rev)?;
                let under = under.join("/");
                Ok((self.tree(r, repo, rev, &commit, &under), None))
            }
            [org, name, "resolve", rev, path @ ..] if !path.is_empty() => {
                let repo = self.repo(r, org, name)?;
                let commit = self.revision(repo, rev)?;
                let path = path.join("/");
                let Some(file) = repo.files.iter().find(|f| f.path == path) else {
                    let mut e = hf_error(
                        StatusCode::NOT_FOUND,
                        Some("EntryNotFound"),
                        "Entry not found",
                    );
                    e.headers_mut().insert("x-repo-commit", hv(&commit));
                    return Err(e);
                };
                if let Some(status) = self.ctl.failure(&file.about.names) {
                    let status = StatusCode::from_u16(status).unwrap();
                    let e = hf_error(status, None, "injected failure");
                    return Ok((e, Some(file.about.clone())));
                }
                Ok((
                    self.resolve(r, &commit, file, counter),
                    Some(file.about.clone()),
                ))
            }
            _ => Err(hf_error(StatusCode::NOT_FOUND, None, "Not Found")),
        }
    }

    /// The repo, if the request may see it.
    fn repo(&self, r: &Req, org: &str, name: &str) -> Result<&HubRepo, Response> {
        let id = format!("{org}/{name}");
        let auth = r.header(header::AUTHORIZATION);
        let Some(repo) = self.repos.iter().find(|repo| repo.id == id) else {
            // The hub does not say whether a repo exists: 401 to strangers, 404 to a logged-in
            // user, both RepoNotFound.
            let status = if auth.is_some() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::UNAUTHORIZED
            };
            let message = format!(
                "Repository Not Found for url: {}/api/models/{id}. Please make sure you specified \
                 the correct `repo_id` and `repo_type`. If you are trying to access a private or \
                 gated repo, make sure you are authenticated.",
                self.url
            );
            return Err(hf_error(status, Some("RepoNotFound"), &message));
        };
        if let Some(token) = &repo.gated_token {
            let message = format!(
                "Access to model {id} is restricted. You must have access to it and be \
                 authenticated to access it. Please log in."
            );
            match auth.and_then(|a| a.strip_prefix("Bearer ")) {
                None => {
                    return Err(hf_error(
                        StatusCode::UNAUTHORIZED,
                        Some("GatedRepo"),
                        &message,
                    ))
                }
                Some(t) if t != token => {
                    let message = format!(
                        "Access to model {id} is restricted and you are not in the authorized \
                         list. Visit https://huggingface.co/{id} to ask for access."
                    );
                    return Err(hf_error(StatusCode::FORBIDDEN, Some("GatedRepo"), &message));
                }
                Some(_) => {}
            }
        }
        Ok(repo)
    }

    /// The commit `rev` names: `main` or the commit itself.
    fn revision(&self, repo: &HubRepo, rev: &str) -> Result<String, Response> {
        if rev == "main" || rev == repo.commit {
            Ok(repo.commit.clone())
        } else {
            Err(hf_error(
                StatusCode::NOT_FOUND,
                Some("RevisionNotFound"),
                &format!("Invalid rev id: {rev}"),
            ))
        }
    }

    fn tree(&self, r: &Req, repo: &HubRepo, rev: &str, commit: &str, under: &str) -> Response {
        let recursive = r
            .query
            .get("recursive")
            .is_some_and(|v| v == "true" || v == "1");
        let prefix = if under.is_empty() {
            String::new()
        } else {
            format!("{under}/")
        };
        // Every folder on the way to a file, then the entries at the level asked for.
        let mut dirs = BTreeSet::new();
        for f in &repo.files {
            let mut at = 0;
            while let Some(i) = f.path[at..].find('/') {
                dirs.insert(f.path[..at + i].to_owned());
                at += i + 1;
            }
        }
        let wanted = |path: &str| -> bool {
            let Some(rest) = path.strip_prefix(&prefix) else {
                return false;
            };
            !rest.is_empty() && (recursive || !rest.contains('/'))
        };
        let mut entries: Vec<(String, Value)> = Vec::new();
        for d in dirs.iter().filter(|d| wanted(d)) {
            let oid = hex::encode(sha1(format!("tree {commit} {d}").as_bytes()));
            entries.push((
                d.clone(),
                json!({"type": "directory", "oid": oid, "size": 0, "path": d}),
            ));
        }
        for f in repo.files.iter().filter(|f| wanted(&f.path)) {
            let mut entry =
                json!({"type": "file", "oid": f.oid, "size": f.data.len(), "path": f.path});
            if f.lfs {
                entry["lfs"] =
                    json!({"oid": f.sha256, "size": f.data.len(), "pointerSize": f.pointer_size});
            }
            entries.push((f.path.clone(), entry));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();

        let mut headers = HeaderMap::new();
        let page = self.ctl.tree_page();
        if page > 0 {
            let start: usize = r
                .query
                .get("cursor")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let end = (start + page).min(entries.len());
            if end < entries.len() {
                let mut query = String::new();
                if recursive {
                    query.push_str("recursive=true&");
                }
                let path = if under.is_empty() {
                    String::new()
                } else {
                    format!("/{under}")
                };
                let next = format!(
                    "<{}/api/models/{}/tree/{rev}{path}?{query}cursor={end}>; rel=\"next\"",
                    self.url, repo.id
                );
                headers.insert(header::LINK, hv(&next));
            }
            entries = entries[start.min(entries.len())..end].to_vec();
        }
        json_response(StatusCode::OK, headers, &Value::Array(entries))
    }

    fn resolve(&self, r: &Req, commit: &str, file: &HubFile, counter: &Arc<AtomicU64>) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert("x-repo-commit", hv(commit));
        if !file.lfs {
            headers.insert(header::ETAG, hv(&format!("\"{}\"", file.oid)));
            let content_type = if file.path.ends_with(".json") {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            return serve_bytes(
                &self.ctl,
                r,
                &file.data,
                &file.about.names,
                headers,
                counter,
            );
        }
        let etag = format!("\"{}\"", file.sha256);
        let location = self.cdn.sign(CdnEntry {
            name: file.sha256.clone(),
            data: file.data.clone(),
            about: file.about.clone(),
            etag: etag.clone(),
        });
        headers.insert(header::LOCATION, hv(&format!("{}{location}", self.cdn_url)));
        headers.insert(header::ETAG, hv(&etag));
        headers.insert("x-linked-etag", hv(&etag));
        headers.insert("x-linked-size", HeaderValue::from(file.data.len()));
        (StatusCode::FOUND, headers).into_response()
    }
}

// ------------------------------------------------------------------------------------------------
// The Ollama registry
// ------------------------------------------------------------------------------------------------

/// The manifest media type.
pub const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config blob's media type.
pub const CONFIG_V1: &str = "application/vnd.docker.container.image.v1+json";
/// The GGUF weights layer's media type.
pub const MODEL_LAYER: &str = "application/vnd.ollama.image.model";
/// The config blob every [`RegistryModel`] gets.
pub const REGISTRY_CONFIG: &str =
    r#"{"model_format":"gguf","model_family":"llama","model_type":"1M","file_type":"F32"}"#;

/// A model tag on the fake registry: its layers; the config blob and manifest are built.
#[derive(Debug, Clone, Default)]
pub struct RegistryModel {
    pub namespace: String,
    pub model: String,
    pub tag: String,
    /// `(media type, bytes)`, e.g. `(MODEL_LAYER, gguf)`, `("application/vnd.ollama.image.template", ..)`.
    pub layers: Vec<(String, Vec<u8>)>,
}

impl RegistryModel {
    /// `name` is `model`, `model:tag`, `namespace/model` or `namespace/model:tag` (defaults
    /// `library`, `latest`).
    pub fn new(name: &str, layers: Vec<(&str, Vec<u8>)>) -> RegistryModel {
        let (path, tag) = match name.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, t),
            _ => (name, "latest"),
        };
        let (namespace, model) = path.split_once('/').unwrap_or(("library", path));
        RegistryModel {
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
            layers: layers.into_iter().map(|(m, b)| (m.to_owned(), b)).collect(),
        }
    }

    /// The config blob.
    pub fn config(&self) -> Vec<u8> {
        REGISTRY_CONFIG.as_bytes().to_vec()
    }

    /// The manifest, exactly as served.
    pub fn manifest(&self) -> Vec<u8> {
        let layer = |media: &str, bytes: &[u8]| json!({"mediaType": media, "digest": sha256_digest(bytes), "size": bytes.len()});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": layer(CONFIG_V1, &self.config()),
            "layers": self.layers.iter().map(|(m, b)| layer(m, b)).collect::<Vec<_>>(),
        });
        serde_json::to_vec(&manifest).unwrap()
    }

    /// `sha256:<hex>` of the manifest.
    pub fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest())
    }

    /// Every blob, `(digest, bytes)`: the config first, then the layers in order.
    pub fn blobs(&self) -> Vec<(String, Vec<u8>)> {
        std::iter::once(self.config())
            .chain(self.layers.iter().map(|(_, b)| b.clone()))
            .map(|b| (sha256_digest(&b), b))
            .collect()
    }

    /// `namespace/model:tag`, the fault key of the manifest.
    pub fn key(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.model, self.tag)
    }
}

struct RegistryState {
    /// (namespace, model, tag) -> manifest.
    manifests: HashMap<(String, String, String), Bytes>,
    /// (namespace, model) -> digest -> bytes.
    blobs: HashMap<(String, String), HashMap<String, Bytes>>,
    ctl: Control,
    cdn_url: String,
    cdn: CdnState,
}

/// A fake Ollama registry: pull `<host_port>/<namespace>/<model>:<tag>` with `insecure`.
/// Derefs to its [`Control`].
pub struct Registry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`, the host part of a model name.
    pub host_port: String,
    /// The CDN's `http://127.0.0.1:PORT`.
    pub cdn_url: String,
    control: Control,
    _server: Server,
}

impl std::ops::Deref for Registry {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Registry {
    pub fn start(models: Vec<RegistryModel>) -> Registry {
        let (main, host_port) = bind();
        let (cdn, cdn_addr) = bind();
        let cdn_url = format!("http://{cdn_addr}");
        let control = Control::default();
        let cdn_state = CdnState {
            ctl: control.clone(),
            sigs: Arc::default(),
        };
        let mut manifests = HashMap::new();
        let mut blobs: HashMap<(String, String), HashMap<String, Bytes>> = HashMap::new();
        for m in &models {
            manifests.insert(
                (m.namespace.clone(), m.model.clone(), m.tag.clone()),
                Bytes::from(m.manifest()),
            );
            let repo = blobs
                .entry((m.namespace.clone(), m.model.clone()))
                .or_default();
            for (digest, bytes) in m.blobs() {
                repo.insert(digest, Bytes::from(bytes));
            }
        }
        let state = Arc::new(RegistryState {
            manifests,
            blobs,
            ctl: control.clone(),
            cdn_url: cdn_url.clone(),
            cdn: cdn_state.clone(),
        });
        let app = Router::new().fallback(registry_handler).with_state(state);
        let cdn_app = Router::new().fallback(cdn_handler).with_state(cdn_state);
        Registry {
            url: format!("http://{host_port}"),
            host_port,
            cdn_url,
            control,
            _server: Server::start(main, app, cdn, cdn_app),
        }
    }

    /// A handle on this registry's log and faults, for another thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The name to pull a model by: `127.0.0.1:PORT/namespace/model:tag`.
    pub fn name(&self, m: &RegistryModel) -> String {
        format!("{}/{}/{}:{}", self.host_port, m.namespace, m.model, m.tag)
    }
}

async fn registry_handler(
    State(s): State<Arc<RegistryState>>,
    req: axum::extract::Request,
) -> Response {
    let r = Req::new(&req);
    let counter = Arc::new(AtomicU64::new(0));
    let (response, about) = s.route(&r, &counter);
    s.ctl
        .record(Listener::Hub, &r, response.status(), about, counter);
    response
}

/// The registry's error answer: `{"errors": [{"code", "message"}]}`.
fn registry_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message}]});
    json_response(status, HeaderMap::new(), &body)
}

impl RegistryState {
    fn route(&self, r: &Req, counter: &Arc<AtomicU64>) -> (Response, Option<About>) {
        if !r.is_read() {
            return (
                registry_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "unsupported"),
                None,
            );
        }
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        match segs.as_slice() {
            ["v2", ns, model, "manifests", tag] => {
                let key = format!("{ns}/{model}:{tag}");
                let about = About {
                    file: key.clone(),
                    names: vec![key],
                };
                if let Some(status) = self.ctl.failure(&about.names) {
                    let status = StatusCode::from_u16(status).unwrap();
                    let e = registry_error(status, "UNKNOWN", "injected failure");
                    return (e, Some(about));
                }
                let id = (ns.to_string(), model.to_string(), tag.to_string());
                let Some(manifest) = self.manifests.get(&id) else {
                    let e = registry_error(
                        StatusCode::NOT_FOUND,
                        "MANIFEST_UNKNOWN",
                        "manifest unknown",
                    );
                    return (e, Some(about));
                };
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MANIFEST_V2));
                headers.insert("docker-content-digest", hv(&sha256_digest(manifest)));
                let response = serve_bytes(&self.ctl, r, manifest, &about.names, headers, counter);
                (response, Some(about))
            }
            ["v2", ns, model, "blobs", digest] => {
                let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
                let canonical = format!("sha256:{hex}");
                let about = About {
                    file: canonical.clone(),
                    names: vec![canonical.clone(), hex.to_owned()],
                };
                if let Some(status) = self.ctl.failure(&about.names) {
                    let status = StatusCode::from_u16(status).unwrap();
                    let e = registry_error(status, "UNKNOWN", "injected failure");
                    return (e, Some(about));
                }
                let blob = self
                    .blobs
                    .get(&(ns.to_string(), model.to_string()))
                    .and_then(|b| b.get(&canonical));
                let Some(blob) = blob else {
                    let e = registry_error(
                        StatusCode::NOT_FOUND,
                        "BLOB_UNKNOWN",
                        "blob unknown to registry",
                    );
                    return (e, Some(about));
                };
                let mut headers = HeaderMap::new();
                headers.insert("docker-content-digest", hv(&canonical));
                if r.method == Method::HEAD {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.len()));
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                    return ((StatusCode::OK, headers).into_response(), Some(about));
                }
                let location = self.cdn.sign(CdnEntry {
                    name: hex.to_owned(),
                    data: blob.clone(),
                    about: about.clone(),
                    etag: format!("\"{hex}\""),
                });
                headers.insert(header::LOCATION, hv(&format!("{}{location}", self.cdn_url)));
                (
                    (StatusCode::TEMPORARY_REDIRECT, headers).into_response(),
                    Some(about),
                )
            }
            _ => (
                registry_error(
                    StatusCode::NOT_FOUND,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                ),
                None,
            ),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Self-tests: the protocol details the pull tests rely on
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::blocking::Client;
    use std::io::Read;

    /// 1.5 MiB that are not all the same.
    fn big(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    }

    fn repo() -> HfRepo {
        HfRepo::new(
            "org/tiny",
            vec![
                ("config.json", b"{\"a\":1}\n".to_vec()),
                ("model.safetensors", big(300_000)),
                ("sub/tokenizer.json", big(LFS_MIN_SIZE)),
                ("README.md", b"hello\n".to_vec()),
            ],
        )
    }

    fn no_redirects() -> Client {
        Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap()
    }

    fn client() -> Client {
        Client::builder().no_proxy().build().unwrap()
    }

    fn header<'a>(r: &'a reqwest::blocking::Response, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    #[test]
    fn sha1_and_git_blob_ids() {
        assert_eq!(
            hex::encode(sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            hex::encode(sha1(long)),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        // `git hash-object` of an empty file and of "hello\n".
        assert_eq!(
            git_blob_sha1(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            git_blob_sha1(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn hub_revision_tree_and_small_files() {
        let repo = repo();
        let hub = HfHub::start(vec![repo.clone()]);
        let commit = hub.commit("org/tiny");
        assert!(is_commit(&commit), "{commit}");
        let c = client();

        let info: Value = c
            .get(format!("{}/api/models/org/tiny/revision/main", hub.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(info["id"], "org/tiny");
        assert_eq!(info["sha"], commit.as_str());
        let siblings: Vec<&str> = info["siblings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["rfilename"].as_str().unwrap())
            .collect();
        assert_eq!(
            siblings,
            [
                "config.json",
                "model.safetensors",
                "sub/tokenizer.json",
                "README.md"
            ]
        );
        // The commit itself is a revision too.
        let r = c
            .get(format!("{}/api/models/org/tiny/revision/{commit}", hub.url))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);

        let tree: Vec<Value> = c
            .get(format!(
                "{}/api/models/org/tiny/tree/{commit}?recursive=true",
                hub.url
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let by_path = |p: &str| tree.iter().find(|e| e["path"] == p).unwrap().clone();
        let readme = by_path("README.md");
        assert_eq!(readme["type"], "file");
        assert_eq!(readme["size"], 6);
        assert_eq!(readme["oid"], git_blob_sha1(b"hello\n"));
        assert!(readme.get("lfs").is_none());
        let weights = by_path("model.safetensors");
        let bytes = repo.file("model.safetensors").unwrap();
        assert_eq!(weights["lfs"]["oid"], sha256_hex(bytes));
        assert_eq!(weights["lfs"]["size"], bytes.len());
        assert_eq!(weights["size"], bytes.len());
        // The git oid of an LFS file is its pointer's.
        assert_ne!(weights["oid"], git_blob_sha1(bytes));
        // 1 MiB or more is LFS whatever the name.
        assert!(by_path("sub/tokenizer.json").get("lfs").is_some());
        assert!(by_path("config.json").get("lfs").is_none());
        assert_eq!(by_path("sub")["type"], "directory");
        assert_eq!(tree.len(), 5);
        // Not recursive: the top level only.
        let top: Vec<Value> = c
            .get(format!("{}/api/models/org/tiny/tree/main", hub.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(top.len(), 4);

        // A small file: 200 straight from the hub, ETag = git blob id, X-Repo-Commit.
        let url = format!("{}/org/tiny/resolve/main/README.md", hub.url);
        let r = no_redirects().get(&url).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "etag"),
            format!("\"{}\"", git_blob_sha1(b"hello\n"))
        );
        assert_eq!(header(&r, "x-repo-commit"), commit);
        assert_eq!(r.bytes().unwrap().as_ref(), b"hello\n");
        let r = c.head(&url).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), "6");
        assert_eq!(r.bytes().unwrap().len(), 0);
        // Ranges work on the hub too.
        let r = c.get(&url).header("Range", "bytes=2-").send().unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(header(&r, "content-range"), "bytes 2-5/6");
        assert_eq!(r.bytes().unwrap().as_ref(), b"llo\n");
        assert_eq!(hub.bytes_served("README.md"), 6 + 4);

        // Folders in paths.
        let r = c
            .get(format!(
                "{}/org/tiny/resolve/{commit}/sub/tokenizer.json",
                hub.url
            ))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().unwrap().len(), LFS_MIN_SIZE);

        // Paged trees.
        hub.tree_page_size(2);
        let mut next = Some(format!(
            "{}/api/models/org/tiny/tree/main?recursive=true",
            hub.url
        ));
        let mut all = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            let r = c.get(&url).send().unwrap();
            next = r.headers().get("link").map(|l| {
                let l = l.to_str().unwrap();
                assert!(l.ends_with(">; rel=\"next\""), "{l}");
                l[1..l.find('>').unwrap()].to_owned()
            });
            all.extend(r.json::<Vec<Value>>().unwrap());
            pages += 1;
        }
        assert_eq!(pages, 3);
        assert_eq!(all, tree);
    }

    #[test]
    fn hub_errors_carry_codes() {
        let hub = HfHub::start(vec![
            repo(),
            HfRepo::new("org/gated", vec![("a.txt", b"x".to_vec())]).gated("hf_right"),
        ]);
        let c = client();
        let check = |r: reqwest::blocking::Response, status: u16, code: &str| {
            assert_eq!(r.status(), status);
            assert_eq!(header(&r, "x-error-code"), code);
            let body: Value = r.json().unwrap();
            assert!(body["error"].is_string(), "{body}");
        };
        check(
            c.get(format!("{}/api/models/org/nope/revision/main", hub.url))
                .send()
                .unwrap(),
            401,
            "RepoNotFound",
        );
        check(
            c.get(format!("{}/org/nope/resolve/main/a.txt", hub.url))
                .bearer_auth("hf_any")
                .send()
                .unwrap(),
            404,
            "RepoNotFound",
        );
        check(
            c.get(format!("{}/api/models/org/tiny/revision/v2", hub.url))
                .send()
                .unwrap(),
            404,
            "RevisionNotFound",
        );
        check(
            c.get(format!("{}/org/tiny/resolve/main/missing.bin", hub.url))
                .send()
                .unwrap(),
            404,
            "EntryNotFound",
        );
        let gated = format!("{}/org/gated/resolve/main/a.txt", hub.url);
        check(c.get(&gated).send().unwrap(), 401, "GatedRepo");
        check(
            c.get(&gated).bearer_auth("hf_wrong").send().unwrap(),
            403,
            "GatedRepo",
        );
        check(
            c.get(format!("{}/api/models/org/gated/revision/main", hub.url))
                .send()
                .unwrap(),
            401,
            "GatedRepo",
        );
        let r = c.get(&gated).bearer_auth("hf_right").send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().unwrap().as_ref(), b"x");
    }

    #[test]
    fn lfs_files_redirect_to_a_cdn_that_serves_ranges_and_never_sees_the_token() {
        let repo = repo().gated("hf_tok");
        let bytes = repo.file("model.safetensors").unwrap().to_vec();
        let sha = sha256_hex(&bytes);
        let hub = HfHub::start(vec![repo]);
        let commit = hub.commit("org/tiny");
        let url = format!("{}/org/tiny/resolve/main/model.safetensors", hub.url);

        for method in [Method::HEAD, Method::GET] {
            let r = no_redirects()
                .request(method, &url)
                .bearer_auth("hf_tok")
                .send()
                .unwrap();
            assert_eq!(r.status(), 302);
            assert_eq!(header(&r, "x-linked-etag"), format!("\"{sha}\""));
            assert_eq!(header(&r, "x-linked-size"), bytes.len().to_string());
            assert_eq!(header(&r, "x-repo-commit"), commit);
            assert_eq!(header(&r, "etag"), format!("\"{sha}\""));
            let location = header(&r, "location").to_owned();
            assert!(
                location.starts_with(&format!("{}/cdn/{sha}?sig=", hub.cdn_url)),
                "{location}"
            );
            assert_ne!(hub.cdn_url, hub.url);
        }
        let location = no_redirects()
            .get(&url)
            .bearer_auth("hf_tok")
            .send()
            .unwrap()
            .headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();

        let c = client();
        let r = c.get(&location).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), bytes.len().to_string());
        assert_eq!(r.bytes().unwrap().as_ref(), bytes.as_slice());
        let r = c
            .get(&location)
            .header("Range", "bytes=1000-")
            .send()
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes 1000-{}/{}", bytes.len() - 1, bytes.len())
        );
        assert_eq!(r.bytes().unwrap().as_ref(), &bytes[1000..]);
        let r = c
            .get(&location)
            .header("Range", "bytes=10-19")
            .send()
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().unwrap().as_ref(), &bytes[10..20]);
        let r = c
            .get(&location)
            .header("Range", format!("bytes={}-", bytes.len()))
            .send()
            .unwrap();
        assert_eq!(r.status(), 416);
        // The signature is required, and must be one the hub handed out for this object.
        let bare = location.split('?').next().unwrap();
        assert_eq!(c.get(bare).send().unwrap().status(), 403);
        assert_eq!(
            c.get(format!("{bare}?sig=forged")).send().unwrap().status(),
            403
        );

        // A client that follows the redirect (reqwest drops the token across hosts) ...
        hub.clear_hits();
        let r = c.get(&url).bearer_auth("hf_tok").send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().unwrap().as_ref(), bytes.as_slice());
        // ... is seen sending the token to the hub and not to the CDN.
        let hits = hub.hits();
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(
            (hits[0].listener, hits[0].status, hits[0].authorization),
            (Listener::Hub, 302, true)
        );
        assert_eq!(
            (hits[1].listener, hits[1].status, hits[1].authorization),
            (Listener::Cdn, 200, false)
        );
        assert_eq!(hits[1].file.as_deref(), Some("org/tiny/model.safetensors"));
        assert_eq!(hits[1].bytes, bytes.len() as u64);
        assert_eq!(hub.bytes_served("model.safetensors"), bytes.len() as u64);
        assert_eq!(
            hub.bytes_served("org/tiny/model.safetensors"),
            bytes.len() as u64
        );
        // A client that forwards it anyway is caught.
        let r = c.get(&location).bearer_auth("hf_tok").send().unwrap();
        assert_eq!(r.status(), 200);
        assert!(hub.hits().last().unwrap().authorization);
    }

    #[test]
    fn drop_after_cuts_the_body_once_and_ranges_resume() {
        let repo = repo();
        let bytes = repo.file("model.safetensors").unwrap().to_vec();
        let hub = HfHub::start(vec![repo]);
        let url = format!("{}/org/tiny/resolve/main/model.safetensors", hub.url);
        let c = client();

        // A HEAD does not use up the fault.
        hub.drop_after("model.safetensors", 100_000);
        assert_eq!(c.head(&url).send().unwrap().status(), 200);
        let mut r = c.get(&url).send().unwrap();
        assert_eq!(r.status(), 200);
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(got.len(), 100_000, "{err}");
        assert_eq!(got, bytes[..100_000]);
        assert_eq!(hub.bytes_served("model.safetensors"), 100_000);

        // Once: the next request resumes from where the cut left off and completes.
        let r = c
            .get(&url)
            .header("Range", format!("bytes={}-", got.len()))
            .send()
            .unwrap();
        assert_eq!(r.status(), 206);
        got.extend_from_slice(&r.bytes().unwrap());
        assert_eq!(got, bytes);
        assert_eq!(hub.bytes_served("model.safetensors"), bytes.len() as u64);
        let cdn: Vec<u64> = hub
            .hits_for("model.safetensors")
            .iter()
            .filter(|h| h.listener == Listener::Cdn && h.method == "GET")
            .map(|h| h.bytes)
            .collect();
        assert_eq!(cdn, [100_000, bytes.len() as u64 - 100_000]);

        // On a small file straight from the hub too, and with 0 bytes.
        hub.drop_after("config.json", 0);
        let mut r = c
            .get(format!("{}/org/tiny/resolve/main/config.json", hub.url))
            .send()
            .unwrap();
        let mut got = Vec::new();
        assert!(r.read_to_end(&mut got).is_err());
        assert!(got.is_empty());
    }

    #[test]
    fn corrupt_fail_status_and_slow() {
        let repo = repo();
        let bytes = repo.file("model.safetensors").unwrap().to_vec();
        let hub = HfHub::start(vec![repo]);
        let url = format!("{}/org/tiny/resolve/main/model.safetensors", hub.url);
        let c = client();

        hub.corrupt("model.safetensors");
        let r = c.get(&url).send().unwrap();
        let got = r.bytes().unwrap();
        assert_eq!(got.len(), bytes.len());
        let diff: Vec<usize> = (0..bytes.len()).filter(|&i| got[i] != bytes[i]).collect();
        assert_eq!(diff, [bytes.len() / 2]);
        // Persistent, and consistent across ranges.
        let r = c
            .get(&url)
            .header("Range", format!("bytes={}-", bytes.len() / 2))
            .send()
            .unwrap();
        assert_eq!(r.bytes().unwrap()[0], got[bytes.len() / 2]);
        hub.clear("model.safetensors");
        assert_eq!(c.get(&url).send().unwrap().bytes().unwrap(), bytes);

        hub.fail_status("model.safetensors", 500);
        for _ in 0..2 {
            let r = c.get(&url).send().unwrap();
            assert_eq!(r.status(), 500);
        }
        assert_eq!(c.head(&url).send().unwrap().status(), 500);
        hub.clear_faults();
        assert_eq!(c.get(&url).send().unwrap().status(), 200);
        hub.fail_status_times("README.md", 503, 1);
        let readme = format!("{}/org/tiny/resolve/main/README.md", hub.url);
        assert_eq!(c.get(&readme).send().unwrap().status(), 503);
        assert_eq!(c.get(&readme).send().unwrap().status(), 200);

        // 20 KB at 100 KB/s: about 0.2 s.
        hub.slow(100_000);
        let start = std::time::Instant::now();
        let r = c.get(&url).header("Range", "bytes=0-19999").send().unwrap();
        assert_eq!(r.bytes().unwrap().len(), 20_000);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        hub.slow(0);
    }

    #[test]
    fn from_dir_follows_symlinks_and_takes_the_commit_from_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snap = tmp.path().join("snapshots").join(commit);
        std::fs::create_dir_all(snap.join("sub")).unwrap();
        std::fs::create_dir_all(tmp.path().join("blobs")).unwrap();
        std::fs::write(tmp.path().join("blobs/abc"), b"linked").unwrap();
        std::os::unix::fs::symlink("../../blobs/abc", snap.join("config.json")).unwrap();
        std::fs::write(snap.join("sub/x.txt"), b"x").unwrap();
        let repo = HfRepo::from_dir("o/n", &snap);
        assert_eq!(repo.commit, commit);
        assert_eq!(
            repo.files,
            [
                ("config.json".to_owned(), b"linked".to_vec()),
                ("sub/x.txt".to_owned(), b"x".to_vec())
            ]
        );
        // Not a commit: an automatic one.
        assert!(HfRepo::from_dir("o/n", &snap.join("sub")).commit.is_empty());

        // The real fixtures, when they have been built.
        let hub_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/fixtures/hub/models--ollmlx-test--tiny-llama/snapshots");
        let Some(Ok(snap)) = std::fs::read_dir(&hub_dir).ok().and_then(|mut d| d.next()) else {
            eprintln!("skipping the fixture half: no {}", hub_dir.display());
            return;
        };
        let repo = HfRepo::from_dir("ollmlx-test/tiny-llama", &snap.path());
        assert!(is_commit(&repo.commit));
        let weights = repo.file("model.safetensors").unwrap().to_vec();
        assert!(repo.file("config.json").is_some());
        let hub = HfHub::start(vec![repo.clone()]);
        let got = client()
            .get(format!(
                "{}/ollmlx-test/tiny-llama/resolve/{}/model.safetensors",
                hub.url, repo.commit
            ))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(got.as_ref(), weights.as_slice());
    }

    #[test]
    fn registry_manifests_and_blobs() {
        let gguf = big(200_000);
        let model = RegistryModel::new(
            "library/tiny:latest",
            vec![
                (MODEL_LAYER, gguf.clone()),
                (
                    "application/vnd.ollama.image.template",
                    b"{{ .Prompt }}".to_vec(),
                ),
            ],
        );
        assert_eq!(
            (
                model.namespace.as_str(),
                model.model.as_str(),
                model.tag.as_str()
            ),
            ("library", "tiny", "latest")
        );
        let reg = Registry::start(vec![model.clone()]);
        assert_eq!(
            reg.name(&model),
            format!("{}/library/tiny:latest", reg.host_port)
        );
        let c = client();

        let r = c
            .get(format!("{}/v2/library/tiny/manifests/latest", reg.url))
            .header("Accept", MANIFEST_V2)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), MANIFEST_V2);
        let body = r.bytes().unwrap();
        assert_eq!(body.as_ref(), model.manifest().as_slice());
        let m: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["config"]["mediaType"], CONFIG_V1);
        assert_eq!(
            m["config"]["digest"],
            sha256_digest(REGISTRY_CONFIG.as_bytes())
        );
        assert_eq!(m["config"]["size"], REGISTRY_CONFIG.len());
        assert_eq!(m["layers"][0]["mediaType"], MODEL_LAYER);
        assert_eq!(m["layers"][0]["digest"], sha256_digest(&gguf));
        assert_eq!(m["layers"][0]["size"], gguf.len());
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);

        let unknown = c
            .get(format!("{}/v2/library/nope/manifests/latest", reg.url))
            .send()
            .unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(
            unknown.json::<Value>().unwrap(),
            json!({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})
        );
        let other_tag = c
            .get(format!("{}/v2/library/tiny/manifests/q4", reg.url))
            .send()
            .unwrap();
        assert_eq!(other_tag.status(), 404);

        let digest = sha256_digest(&gguf);
        let blob = format!("{}/v2/library/tiny/blobs/{digest}", reg.url);
        let r = c.head(&blob).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), gguf.len().to_string());
        let r = no_redirects().get(&blob).send().unwrap();
        assert_eq!(r.status(), 307);
        let location = header(&r, "location").to_owned();
        assert!(
            location.starts_with(&format!("{}/cdn/", reg.cdn_url)),
            "{location}"
        );
        assert!(location.contains("?sig="), "{location}");
        // Ollama's parts: closed ranges on the CDN URL.
        let r = c
            .get(&location)
            .header("Range", "bytes=100-199")
            .send()
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes 100-199/{}", gguf.len())
        );
        assert_eq!(r.bytes().unwrap().as_ref(), &gguf[100..200]);
        // Following the redirect gets the whole blob.
        assert_eq!(c.get(&blob).send().unwrap().bytes().unwrap(), gguf);
        assert_eq!(reg.bytes_served(&digest), 100 + gguf.len() as u64);
        let bare = location.split('?').next().unwrap();
        assert_eq!(c.get(bare).send().unwrap().status(), 403);
        let r = c
            .head(format!(
                "{}/v2/library/tiny/blobs/sha256:{}",
                reg.url,
                "0".repeat(64)
            ))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404);

        // Faults by digest.
        reg.drop_after(&digest, 5000);
        let mut r = c.get(&blob).send().unwrap();
        let mut got = Vec::new();
        assert!(r.read_to_end(&mut got).is_err());
        assert_eq!(got.len(), 5000);
        reg.fail_status(&model.key(), 500);
        let r = c
            .get(format!("{}/v2/library/tiny/manifests/latest", reg.url))
            .send()
            .unwrap();
        assert_eq!(r.status(), 500);
        let hits = reg.hits();
        assert!(hits
            .iter()
            .all(|h| h.listener == Listener::Hub || h.path.starts_with("/cdn/")));
    }

    #[test]
    fn dropping_a_server_closes_it() {
        let hub = HfHub::start(vec![repo()]);
        let url = format!("{}/api/models/org/tiny/revision/main", hub.url);
        let c = client();
        assert_eq!(c.get(&url).send().unwrap().status(), 200);
        // Even with a download in flight.
        hub.slow(1000);
        let mut r = c
            .get(format!(
                "{}/org/tiny/resolve/main/model.safetensors",
                hub.url
            ))
            .send()
            .unwrap();
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        drop(hub);
        assert!(c.get(&url).send().is_err());
        let mut rest = Vec::new();
        assert!(r.read_to_end(&mut rest).is_err());
    }
}
