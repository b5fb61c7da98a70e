//! Time to first token of the next turn of a long conversation: cold (nothing cached), warm
//! (the previous turn's KV cache kept by the engine) and restored (the state saved to disk and
//! loaded into a freshly loaded model), through the public `LoadedModel` API.
//!
//! ```text
//! cargo run --release -p modelforge-benches --bin context-reuse -- [--model GGUF] [--tokens 1500]
//! ```

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use modelforge_core::{Backend, ChatMessage, GenerationParams, LoadOptions, LoadedModel};
use modelforge_engine::LlamaCppBackend;

#[derive(Parser)]
#[command(about = "Second-turn and restored-state time to first token against a cold prefill")]
struct Args {
    /// The GGUF model [default: the test models' SmolLM2].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Conversation length before the new message, in tokens.
    #[arg(long, default_value_t = 1500)]
    tokens: usize,
    /// Inference threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let path = args.model.clone().unwrap_or_else(modelforge_testkit::smollm2_gguf);
    let options = LoadOptions {
        context_length: Some((args.tokens as u32 + 512).next_power_of_two()),
        threads: Some(args.threads),
        ..LoadOptions::default()
    };
    let load = || LlamaCppBackend::new().load(&path, &options);
    let model = load()?;

    // A conversation of about `tokens` tokens, then a new question.
    let mut history = vec![ChatMessage::system("You are a helpful travel assistant.")];
    let mut day = 0;
    while model.count_tokens(&model.render_chat(&history, false)?)? < args.tokens {
        day += 1;
        history.push(ChatMessage::user(format!(
            "Day {day}: which museum in Kyoto should I see, and how long does the walk take from the station?"
        )));
        history.push(ChatMessage::assistant(format!(
            "On day {day}, visit the museum by the river; the walk from the station takes about twenty minutes."
        )));
    }
    let before = model.count_tokens(&model.render_chat(&history, false)?)?;
    let mut next = history.clone();
    next.push(ChatMessage::user("Which day had the longest walk?"));
    let one_token = GenerationParams { max_tokens: 1, ..GenerationParams::greedy() };

    let ttft = |model: &dyn LoadedModel, messages: &[ChatMessage]| -> anyhow::Result<(Duration, u32)> {
        let started = Instant::now();
        let mut first = None;
        let generation = model.chat(messages, &one_token, &mut |_| {
            first.get_or_insert_with(|| started.elapsed());
            ControlFlow::Continue(())
        })?;
        Ok((first.unwrap_or_else(|| started.elapsed()), generation.usage.cached_tokens))
    };

    let dir = tempfile::tempdir()?;
    let state = dir.path().join("conversation.kv");
    let (mut cold, mut warm, mut restored) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        // Cold: a fresh model processes the whole conversation.
        let fresh: Arc<dyn LoadedModel> = load()?;
        cold.push(ttft(fresh.as_ref(), &next)?);
        // Warm: the previous turn left the conversation in the cache.
        let fresh: Arc<dyn LoadedModel> = load()?;
        fresh.chat(&history[..history.len() - 1], &one_token, &mut |_| ControlFlow::Continue(()))?;
        warm.push(ttft(fresh.as_ref(), &next)?);
        // Restored: another process saved the state; this one loads it before the turn.
        fresh.save_state(&fresh.render_chat(&history, false)?, &state)?;
        let restarted: Arc<dyn LoadedModel> = load()?;
        let started = Instant::now();
        restarted.load_state(&state)?;
        let load_time = started.elapsed();
        let (first, cached) = ttft(restarted.as_ref(), &next)?;
        restored.push((load_time + first, cached));
    }
    let median = |runs: &mut Vec<(Duration, u32)>| {
        runs.sort();
        runs[runs.len() / 2]
    };
    let (cold, _) = median(&mut cold);
    let (warm, warm_cached) = median(&mut warm);
    let (restored, restored_cached) = median(&mut restored);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("conversation: {before} tokens, then a new question; {} threads", args.threads);
    println!("cold prefill     TTFT {:8.1} ms", ms(cold));
    println!(
        "next turn (warm) TTFT {:8.1} ms  = {:.1}% of cold ({warm_cached} tokens reused)",
        ms(warm),
        100.0 * ms(warm) / ms(cold)
    );
    println!(
        "restored state   TTFT {:8.1} ms  = {:.1}% of cold (load + first token; {restored_cached} tokens reused)",
        ms(restored),
        100.0 * ms(restored) / ms(cold)
    );
    Ok(())
}
