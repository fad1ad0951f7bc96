//! The one error shape of Ollama's native API.

use serde::{Deserialize, Serialize};

/// `{"error": "..."}`: the body of every non-2xx reply, and the last line of a stream that failed
/// after it began.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: String,
}
