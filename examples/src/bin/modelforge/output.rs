//! Printing lists as tables or JSON.

use modelforge_core::{CachedModel, Memory, Session};
use serde::Serialize;

fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Sessions: id, title, message count, last update.
pub fn sessions(sessions: &[Session], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(sessions);
    }
    if sessions.is_empty() {
        println!("no sessions yet");
    }
    for s in sessions {
        println!(
            "{}  {:>4} msgs  {}  {}",
            s.id,
            s.message_count,
            s.updated_at.format("%Y-%m-%d %H:%M"),
            s.title
        );
    }
    Ok(())
}

/// Memories: id, kind, content.
pub fn memories(memories: &[Memory], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(memories);
    }
    if memories.is_empty() {
        println!("no memories yet");
    }
    for m in memories {
        println!("{}  {:<10} {}", m.id, m.kind.as_str(), m.content);
    }
    Ok(())
}

/// Local models (DATA_DIR/models and the Hugging Face cache): name, format, quantization, size.
pub fn models(models: &[CachedModel], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(models);
    }
    if models.is_empty() {
        println!(
            "no models found: place GGUF files or safetensors directories under DATA_DIR/models, \
             or fetch one with `modelforge pull org/repo`"
        );
    }
    for m in models {
        println!(
            "{:<40} {:<12} {:<8} {:>8.1} MB",
            m.name,
            m.format.as_str(),
            m.quantization.as_deref().unwrap_or("-"),
            m.size_bytes as f64 / 1e6
        );
    }
    Ok(())
}
