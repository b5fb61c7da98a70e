//! Helpers shared by the workspace's tests (dev-only, never published).
//!
//! Test models are fetched by `scripts/test-models` into `~/.cache/modelforge/test-models`
//! (or `MODELFORGE_TEST_MODELS`). A test that needs one fails with instructions when it is
//! missing: a missing model is never a silent skip.
//!
//! [`hub_server`] is a local stand-in for the Hugging Face Hub, for the hub client's tests;
//! [`web_server`] one for a search engine and the web pages it finds.

pub mod echo_model;
pub mod gguf;
pub mod hub_server;
pub mod memory_store;
pub mod prompt_only;
pub mod sink;
pub mod web_server;

use std::path::PathBuf;

/// The directory holding the test models.
pub fn test_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MODELFORGE_TEST_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/modelforge/test-models")
}

fn require(relative: &str) -> PathBuf {
    let path = test_models_dir().join(relative);
    assert!(
        path.exists(),
        "test model {} is missing: run `scripts/test-models` first (see README.md)",
        path.display()
    );
    path
}

/// SmolLM2-135M-Instruct, Q4_1 GGUF (llama architecture, ChatML template).
pub fn smollm2_gguf() -> PathBuf {
    require("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// all-MiniLM-L6-v2: `config.json`, `model.safetensors`, `tokenizer.json`.
pub fn minilm_dir() -> PathBuf {
    require("all-minilm-l6-v2")
}

/// Gemma 3 270M (base, not instruction-tuned), Q4_K_M GGUF: architecture `gemma3`, no chat
/// template in the file, Gemma's `<start_of_turn>`/`<end_of_turn>` in its vocabulary.
pub fn gemma3_gguf() -> PathBuf {
    require("gemma3/gemma-3-270m-q4_k_m.gguf")
}
