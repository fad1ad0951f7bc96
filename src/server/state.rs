//! The state every handler shares.

use crate::config::Config;
use crate::scheduler::SchedulerHandle;
use crate::store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub scheduler: SchedulerHandle,
    /// What `/metrics` shows; the scheduler records into the same one.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Cancelled when the server starts shutting down: streams end with a final line.
    pub shutdown: CancellationToken,
    pub puller: crate::pull::Puller,
    /// Serialises writes to the model stores (create, copy, delete).
    pub store_lock: Arc<tokio::sync::Mutex<()>>,
}
