//! Recording and fault injection, shared by both servers: the request log ([`Hit`]) and the
//! fault switches of one server, behind a cheap-to-clone [`Control`].

use super::http::{About, Req};
use axum::http::{header, StatusCode};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
pub(super) struct Faults {
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

    pub(super) fn take_drop(&self, names: &[String]) -> Option<u64> {
        let mut s = self.lock();
        let key = names
            .iter()
            .find(|n| s.faults.drop_after.contains_key(*n))?
            .clone();
        s.faults.drop_after.remove(&key)
    }

    pub(super) fn is_corrupt(&self, names: &[String]) -> bool {
        let s = self.lock();
        names.iter().any(|n| s.faults.corrupt.contains(n))
    }

    pub(super) fn failure(&self, names: &[String]) -> Option<u16> {
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

    pub(super) fn rate(&self) -> u64 {
        self.lock().faults.slow
    }

    pub(super) fn tree_page(&self) -> usize {
        self.lock().faults.tree_page
    }

    pub(super) fn record(
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
