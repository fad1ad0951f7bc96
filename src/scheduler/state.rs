//! The scheduler's pure decisions, kept apart from the actor so they are tested without tokio.

use crate::api::KeepAlive;
use std::path::PathBuf;

/// What the eviction policy needs to know about a loaded runner.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: PathBuf,
    pub refs: usize,
    pub keep_alive: KeepAlive,
}

/// Orders keep-alives from shortest to longest: the runners users asked to keep least.
fn rank(k: KeepAlive) -> (u8, std::time::Duration) {
    match k {
        KeepAlive::Zero => (0, std::time::Duration::ZERO),
        KeepAlive::For(d) => (1, d),
        KeepAlive::Forever => (2, std::time::Duration::ZERO),
    }
}

/// Picks the runner to evict to make room: only idle runners (no request in flight), shortest
/// keep-alive first, then by key for a stable choice. `None` means wait for one to go idle.
pub fn pick_victim(loaded: &[Candidate]) -> Option<PathBuf> {
    loaded
        .iter()
        .filter(|c| c.refs == 0)
        .min_by(|a, b| {
            rank(a.keep_alive)
                .cmp(&rank(b.keep_alive))
                .then_with(|| a.key.cmp(&b.key))
        })
        .map(|c| c.key.clone())
}

/// Whether a load must first make room.
pub fn needs_room(loaded: usize, max_loaded: usize) -> bool {
    loaded >= max_loaded
}

/// Whether another request may wait for a load.
pub fn queue_has_room(waiting: usize, max_queue: usize) -> bool {
    waiting < max_queue
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn c(key: &str, refs: usize, k: KeepAlive) -> Candidate {
        Candidate {
            key: key.into(),
            refs,
            keep_alive: k,
        }
    }

    #[test]
    fn evicts_idle_shortest_keep_alive_first() {
        let loaded = vec![
            c("a", 0, KeepAlive::Forever),
            c("b", 0, KeepAlive::For(Duration::from_secs(600))),
            c("c", 1, KeepAlive::Zero),
            c("d", 0, KeepAlive::For(Duration::from_secs(60))),
        ];
        assert_eq!(pick_victim(&loaded), Some("d".into()));
    }

    #[test]
    fn busy_runners_are_never_evicted() {
        let loaded = vec![c("a", 2, KeepAlive::Zero), c("b", 1, KeepAlive::Zero)];
        assert_eq!(pick_victim(&loaded), None);
        assert_eq!(
            pick_victim(&[c("x", 0, KeepAlive::Forever)]),
            Some("x".into())
        );
    }

    #[test]
    fn limits() {
        assert!(needs_room(3, 3));
        assert!(!needs_room(2, 3));
        assert!(queue_has_room(511, 512));
        assert!(!queue_has_room(512, 512));
    }
}
