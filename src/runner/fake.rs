//! A scripted runner for scheduler and handler tests: it "generates" a fixed list of words,
//! optionally slowly, can fail on demand, and records what it was asked.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct FakeRunner {
    pub words: Vec<String>,
    pub delay: Duration,
    /// Fail the stream after this many chunks.
    pub fail_after: Option<usize>,
    /// Refuse every request with this 400 message.
    pub reject: Option<String>,
    pub dead: AtomicBool,
    pub closed: AtomicBool,
    pub died: Notify,
    pub requests: Mutex<Vec<CompletionRequest>>,
    pub info: RunnerInfo,
    /// The prefix-cache budget it was started with, then as `shrink_cache` set it.
    pub prefix_budget: Mutex<Option<u64>>,
}

impl FakeRunner {
    pub fn new(words: &[&str]) -> FakeRunner {
        FakeRunner {
            words: words.iter().map(|w| w.to_string()).collect(),
            info: RunnerInfo {
                pid: Some(4242),
                context_length: Some(2048),
                backend: "cpu".into(),
                load: None,
                distributed: None,
            },
            ..Default::default()
        }
    }

    /// Simulates a crash.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.died.notify_waiters();
    }
}

#[async_trait::async_trait]
impl Runner for FakeRunner {
    async fn completion(&self, req: CompletionRequest) -> Result<EventStream, RunnerError> {
        if let Some(m) = &self.reject {
            return Err(RunnerError::Rejected {
                status: 400,
                message: m.clone(),
            });
        }
        let limit = if req.options.num_predict >= 0 {
            req.options.num_predict as usize
        } else {
            usize::MAX
        };
        self.requests.lock().unwrap().push(req);
        let words: Vec<String> = self.words.iter().take(limit).cloned().collect();
        let n = words.len() as u64;
        let (delay, fail_after) = (self.delay, self.fail_after);
        let reason = if (n as usize) < self.words.len() {
            "length"
        } else {
            "stop"
        };
        let mut events: Vec<Result<RunnerEvent, RunnerError>> = vec![Ok(RunnerEvent::Start {
            prompt_tokens: 3,
            thinking: false,
        })];
        for (i, w) in words.into_iter().enumerate() {
            if fail_after == Some(i) {
                events.push(Err(RunnerError::Exited {
                    last_error: "boom".into(),
                }));
                break;
            }
            events.push(Ok(RunnerEvent::Chunk {
                content: w,
                logprobs: Vec::new(),
            }));
        }
        if fail_after.is_none_or(|f| f >= n as usize) {
            events.push(Ok(RunnerEvent::Done(Done {
                done_reason: reason.into(),
                prompt_eval_count: 3,
                prompt_eval_duration: 1000,
                eval_count: n,
                eval_duration: 2000,
                context: Some(vec![1, 2, 3]),
                stop_sequence: None,
            })));
        }
        let stream = futures_util::stream::iter(events).then(move |e| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            e
        });
        Ok(Box::pin(stream))
    }

    async fn tokenize(&self, text: &str) -> Result<Vec<i64>, RunnerError> {
        Ok(text
            .split_whitespace()
            .enumerate()
            .map(|(i, _)| i as i64)
            .collect())
    }

    async fn detokenize(&self, tokens: &[i64]) -> Result<String, RunnerError> {
        Ok(tokens
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst)
    }

    async fn exited(&self) {
        while self.is_alive() {
            let notified = self.died.notified();
            if !self.is_alive() {
                break;
            }
            notified.await;
        }
    }

    async fn shrink_cache(&self, max_bytes: u64) -> Result<(), RunnerError> {
        *self.prefix_budget.lock().unwrap() = Some(max_bytes);
        Ok(())
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.died.notify_waiters();
    }
}

use futures_util::StreamExt;

/// A factory of fake runners that remembers every runner it made.
#[derive(Default)]
pub struct FakeFactory {
    pub words: Vec<String>,
    pub load_delay: Duration,
    pub chunk_delay: Duration,
    pub fail_load: Option<String>,
    /// Passed to each runner made.
    pub fail_after: Option<usize>,
    /// Runners keep the load options they were started with (as llama-server does).
    pub fixed_options: bool,
    pub reject: Option<String>,
    pub starts: AtomicUsize,
    pub made: Mutex<Vec<Arc<FakeRunner>>>,
}

impl FakeFactory {
    pub fn new(words: &[&str]) -> FakeFactory {
        FakeFactory {
            words: words.iter().map(|w| w.to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn last(&self) -> Arc<FakeRunner> {
        self.made
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no runner made yet")
    }
}

#[async_trait::async_trait]
impl RunnerFactory for FakeFactory {
    async fn start(&self, spec: LoadSpec) -> Result<Arc<dyn Runner>, RunnerError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.load_delay).await;
        if let Some(m) = &self.fail_load {
            return Err(RunnerError::Load { message: m.clone() });
        }
        let words: Vec<&str> = self.words.iter().map(String::as_str).collect();
        let r = Arc::new(FakeRunner {
            delay: self.chunk_delay,
            fail_after: self.fail_after,
            reject: self.reject.clone(),
            prefix_budget: Mutex::new(spec.prefix_cache_bytes),
            ..FakeRunner::new(&words)
        });
        let r = if self.fixed_options {
            let mut inner = Arc::try_unwrap(r).unwrap_or_else(|_| unreachable!());
            inner.info.load = Some(spec.options.clone());
            Arc::new(inner)
        } else {
            r
        };
        self.made.lock().unwrap().push(r.clone());
        Ok(r)
    }
}
