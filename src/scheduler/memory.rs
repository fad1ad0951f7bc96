//! Memory accounting for loads: what a model will take, and what the machine allows.
//!
//! A load's estimate is its weights (the files' bytes) plus the KV cache of `parallel` slots of
//! `num_ctx` tokens each, at the KV cache type's bytes per element; an MLX runner adds its
//! prefix-cache budget, the one part that can be shrunk later. The budget is the machine's
//! physical memory less a reserve for the system (`OLLMLX_MAX_MEMORY` overrides it). Estimates
//! are read from small files (a config.json, a GGUF header without its arrays), off the actor.

use crate::config::KvCacheType;
use crate::store::format::Format;
use crate::store::LocalModel;
use serde_json::Value;

/// What one load needs: the fixed part (weights + KV) and the shrinkable prefix-cache budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    pub fixed: u64,
    pub prefix: u64,
}

/// The default MLX prefix-cache budget: a quarter of what the weights leave of the budget, at
/// most 8 GiB (the runner's own default, and the bound of Ollama's MLX prefix cache).
pub fn default_prefix(limit: u64, weights: u64) -> u64 {
    (limit.saturating_sub(weights) / 4).min(8 << 30)
}

/// The estimate of loading `model` with `parallel` slots of `num_ctx` tokens.
pub fn estimate(model: &LocalModel, parallel: usize, num_ctx: u64, kv: KvCacheType) -> u64 {
    let per_token = kv_bytes_per_token(model, kv);
    model.size.saturating_add(
        per_token
            .saturating_mul(num_ctx)
            .saturating_mul(parallel as u64),
    )
}

/// What this machine counts of a load spread over `machines` (itself and llama.cpp
/// rpc-servers): an even share of the weights and KV cache, rounded up.
///
/// llama.cpp puts whole layers (with their KV cache) on the rpc-servers and this machine's GPU,
/// in proportion to each device's free memory, and keeps only the token embeddings on this
/// machine's CPU; the scheduler knows neither the helpers' free memory nor, ahead of the load,
/// llama.cpp's split. An even share is what a machine among equals holds, more than a CPU-only
/// main machine holds, and lets a model bigger than this machine load when the helpers can take
/// the rest: whether they can is theirs to say (llama-server fails the load if they cannot).
pub fn local_share(need: u64, machines: usize) -> u64 {
    need.div_ceil(machines.max(1) as u64)
}

/// Bytes the KV cache takes per token (keys and values of every layer); 0 when the model's
/// shape cannot be read.
pub fn kv_bytes_per_token(model: &LocalModel, kv: KvCacheType) -> u64 {
    match &model.format {
        Format::Mlx(layout) => std::fs::read(layout.dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map_or(0, |c| mlx_kv_per_token(&c)),
        Format::Gguf(path) => crate::store::gguf::read(path, false).map_or(0, |g| {
            let arch = g.architecture();
            let get = |k: &str| g.u64(&format!("{arch}.{k}"));
            let layers = get("block_count").unwrap_or(0);
            let heads = get("attention.head_count").unwrap_or(0);
            let kv_heads = get("attention.head_count_kv").unwrap_or(heads);
            let width = get("embedding_length").unwrap_or(0);
            let default_dim = width.checked_div(heads).unwrap_or(0);
            let k = get("attention.key_length").unwrap_or(default_dim);
            let v = get("attention.value_length").unwrap_or(default_dim);
            let elems = layers * kv_heads * (k + v);
            (elems as f64 * gguf_elem_bytes(kv)) as u64
        }),
    }
}

/// llama.cpp's bytes per cached element: f16 2, q8_0 34/32, q4_0 18/32.
fn gguf_elem_bytes(kv: KvCacheType) -> f64 {
    match kv {
        KvCacheType::F16 => 2.0,
        KvCacheType::Q8_0 => 34.0 / 32.0,
        KvCacheType::Q4_0 => 18.0 / 32.0,
    }
}

/// From a Hugging Face config (``text_config`` preferred): layers × KV heads × head size × 2
/// (keys and values) × the activations' bytes (4 for float32 models, else 2). The first
/// 5,000 tokens of an MLX cache are never quantized, so the KV type does not change this.
fn mlx_kv_per_token(config: &Value) -> u64 {
    let text = config
        .get("text_config")
        .filter(|t| t.is_object())
        .unwrap_or(config);
    let num = |k: &str| {
        text.get(k)
            .and_then(Value::as_u64)
            .or_else(|| config.get(k)?.as_u64())
    };
    let layers = num("num_hidden_layers").unwrap_or(0);
    let heads = num("num_attention_heads").unwrap_or(0);
    let kv_heads = num("num_key_value_heads").unwrap_or(heads);
    let head_dim = num("head_dim")
        .or_else(|| Some(num("hidden_size")? / heads.max(1)))
        .unwrap_or(0);
    let dtype = text
        .get("torch_dtype")
        .or_else(|| config.get("torch_dtype"))
        .and_then(Value::as_str);
    let elem = if dtype == Some("float32") { 4 } else { 2 };
    layers * kv_heads * head_dim * 2 * elem
}

/// Physical memory of this machine.
pub fn system_memory() -> Option<u64> {
    if let Ok(info) = std::fs::read_to_string("/proc/meminfo") {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        return Some(kib * 1024);
    }
    let out = std::process::Command::new("sysctl")
        .args(["-n", "hw.memsize"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The default budget: physical memory less a reserve for the system and other programs
/// (a tenth of it, at least 1 GiB).
pub fn default_limit(total: u64) -> u64 {
    total.saturating_sub((total / 10).max(1 << 30))
}

/// Ollama's words for a model that cannot fit even alone.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv_per_token_from_a_hugging_face_config() {
        // Llama-3.1-8B's shape: 32 layers, 8 KV heads of 128, bf16: 128 KiB a token.
        let c = json!({"num_hidden_layers": 32, "num_attention_heads": 32,
                       "num_key_value_heads": 8, "hidden_size": 4096, "torch_dtype": "bfloat16"});
        assert_eq!(mlx_kv_per_token(&c), 128 << 10);
        // Nested text config, head size from hidden_size / heads, float32.
        let c = json!({"text_config": {"num_hidden_layers": 4, "num_attention_heads": 4,
                       "hidden_size": 128, "torch_dtype": "float32"}});
        assert_eq!(mlx_kv_per_token(&c), 4 * 4 * 32 * 2 * 4);
        assert_eq!(mlx_kv_per_token(&json!({})), 0);
    }

    #[test]
    fn budgets() {
        assert_eq!(default_limit(24 << 30), (24u64 << 30) - (24u64 << 30) / 10);
        assert_eq!(default_limit(4 << 30), 3 << 30); // at least 1 GiB reserved
        assert_eq!(default_limit(1 << 29), 0);
        assert_eq!(default_prefix(10 << 30, 2 << 30), 2 << 30);
        assert_eq!(default_prefix(100 << 30, 1 << 30), 8 << 30);
        assert_eq!(default_prefix(1 << 30, 2 << 30), 0);
        assert_eq!(gib(3 << 29), "1.5 GiB");
        assert_eq!(local_share(10 << 30, 1), 10 << 30);
        assert_eq!(local_share(9, 3), 3);
        assert_eq!(local_share(10, 3), 4, "rounded up");
        assert_eq!(local_share(10, 0), 10);
    }
}
