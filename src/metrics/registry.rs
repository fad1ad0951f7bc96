//! The metric primitives behind `/metrics`: counters, gauges and histograms that are plain
//! atomics, and [`Family`], a set of one metric per label values.
//!
//! Recording never takes a lock: a request looks its labelled metrics up once (a read lock on
//! the family's map, a write lock only the first time a label set is seen) and then only adds to
//! atomics, so a token costs two relaxed atomic adds. Relaxed ordering is enough: each value is
//! independent, and a scrape that sees one update but not its neighbour is off by one token for
//! one scrape, which Prometheus's own clients accept too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A value that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Durations counted into fixed buckets (upper bounds in seconds, ascending), with their sum.
///
/// Each observation lands in exactly one slot (the first bound it does not exceed, or the
/// overflow slot past the last bound); [`Histogram::snapshot`] makes the counts cumulative, as
/// the exposition format wants. The count is the sum of the slots, so `_count` always equals
/// the `+Inf` bucket even while observations race a scrape.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    slots: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

/// What a histogram held at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, ascending; the last bound is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// `bounds` must be ascending and finite; `+Inf` is implied.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending bounds");
        Histogram {
            bounds,
            slots: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // The first bound >= secs: Prometheus buckets are "less than or equal".
        let slot = self.bounds.partition_point(|b| *b < secs);
        self.slots[slot].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(self.slots.len());
        for (i, slot) in self.slots.iter().enumerate() {
            running += slot.load(Relaxed);
            let bound = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, running));
        }
        HistogramSnapshot {
            buckets,
            count: running,
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// One metric per set of label values, created on first use. Label names are fixed per family;
/// values are kept sorted so the exposition is stable between scrapes.
pub struct Family<M> {
    labels: &'static [&'static str],
    make: fn() -> M,
    map: RwLock<BTreeMap<Vec<String>, Arc<M>>>,
}

impl<M> Family<M> {
    pub fn new(labels: &'static [&'static str], make: fn() -> M) -> Family<M> {
        Family {
            labels,
            make,
            map: RwLock::default(),
        }
    }

    pub fn labels(&self) -> &'static [&'static str] {
        self.labels
    }

    /// The metric for these label values (in the order of the family's label names). Callers
    /// on a hot path keep the returned `Arc` rather than looking it up again.
    pub fn get(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.labels.len(), "one value per label");
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        if let Some(m) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return m.clone();
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    /// Every label set and its metric, sorted by label values.
    pub fn entries(&self) -> Vec<(Vec<String>, Arc<M>)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Family<Counter> {
    pub fn counters(labels: &'static [&'static str]) -> Family<Counter> {
        Family::new(labels, Counter::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.01, 0.1, 1.0];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::new(BOUNDS);
        // Exactly on a bound counts in that bucket ("le"), just above goes to the next.
        for d in [ms(10), ms(11), ms(100), ms(5), ms(2000)] {
            h.observe(d);
        }
        let s = h.snapshot();
        assert_eq!(
            s.buckets,
            vec![(0.01, 2), (0.1, 4), (1.0, 4), (f64::INFINITY, 5)]
        );
        assert_eq!(s.count, 5);
        assert!((s.sum_seconds - 2.126).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn empty_histogram_has_every_bucket_at_zero() {
        let s = Histogram::new(BOUNDS).snapshot();
        assert_eq!(s.buckets.len(), BOUNDS.len() + 1);
        assert!(s.buckets.iter().all(|(_, n)| *n == 0));
        assert_eq!((s.count, s.sum_seconds), (0, 0.0));
    }

    #[test]
    fn zero_and_huge_durations_land_at_the_ends() {
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::ZERO);
        h.observe(Duration::MAX);
        let s = h.snapshot();
        assert_eq!(s.buckets[0], (0.01, 1));
        assert_eq!(s.buckets[2], (1.0, 1));
        assert_eq!(s.count, 2);
    }

    #[test]
    fn family_shares_one_metric_per_label_set_and_sorts() {
        let f = Family::counters(&["model"]);
        f.get(&["b"]).add(2);
        let a = f.get(&["a"]);
        a.inc();
        f.get(&["b"]).inc();
        assert_eq!(a.get(), 1);
        let got: Vec<(Vec<String>, u64)> =
            f.entries().into_iter().map(|(k, c)| (k, c.get())).collect();
        assert_eq!(
            got,
            vec![(vec!["a".to_owned()], 1), (vec!["b".to_owned()], 3)]
        );
    }

    #[test]
    fn counters_and_gauges_add_up_across_threads() {
        let c = Arc::new(Counter::default());
        let g = Arc::new(Gauge::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, g) = (c.clone(), g.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.inc();
                        g.inc();
                        g.dec();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((c.get(), g.get()), (4000, 0));
    }
}
