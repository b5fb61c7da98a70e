//! Printing lists as tables or JSON.

use modelforge_core::{CachedModel, Memory, Session};
use modelforge_examples::setup::ModelDescription;
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

/// Local models (DATA_DIR/models and the Hugging Face cache): name, format, the backend that
/// serves it, its chat format, quantization, size.
pub fn models(models: &[(CachedModel, ModelDescription)], json: bool) -> anyhow::Result<()> {
    if json {
        let list: Vec<serde_json::Value> = models
            .iter()
            .map(|(m, d)| {
                let mut value = serde_json::to_value(m).unwrap_or_default();
                if let (Some(object), Ok(serde_json::Value::Object(extra))) =
                    (value.as_object_mut(), serde_json::to_value(d))
                {
                    object.extend(extra);
                }
                value
            })
            .collect();
        return print_json(&list);
    }
    if models.is_empty() {
        println!(
            "no models found: place GGUF files or safetensors directories under DATA_DIR/models, \
             or fetch one with `modelforge pull org/repo`"
        );
    }
    for (m, d) in models {
        println!(
            "{:<40} {:<12} {:<10} {:<26} {:<8} {:>8.1} MB",
            m.name,
            m.format.as_str(),
            d.backend.unwrap_or("-"),
            d.chat_format.as_deref().unwrap_or("-"),
            m.quantization.as_deref().unwrap_or("-"),
            m.size_bytes as f64 / 1e6
        );
        if let Some(error) = &d.error {
            println!("    {error}");
        }
    }
    Ok(())
}
