//! `modelforge bench`: llama-bench-style speed measurement of a backend.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use modelforge_core::LoadOptions;
use modelforge_engine::{Bench, BenchConfig, BenchReport, CandleBackend, LlamaCppBackend};

/// Which backend to measure.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendName {
    /// llama.cpp (GGUF).
    LlamaCpp,
    /// candle (GGUF or safetensors).
    Candle,
}

/// Arguments of `modelforge bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// The backend to measure.
    #[arg(long, value_enum, default_value = "llama-cpp")]
    backend: BackendName,
    /// Prompt tokens processed in one batch.
    #[arg(long, default_value_t = 512)]
    pp: usize,
    /// Tokens generated one at a time.
    #[arg(long, default_value_t = 128)]
    tg: usize,
    /// Inference threads [default: all cores].
    #[arg(long)]
    threads: Option<u32>,
    /// Sequences generating together (aggregate tokens/s).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// KV cache size in tokens (llama.cpp).
    #[arg(long)]
    cache_tokens: Option<u32>,
    /// Print `{"backend", "pp_tps", "tg_tps"}`.
    #[arg(long)]
    json: bool,
}

/// Runs `modelforge bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let config = BenchConfig { prompt_tokens: args.pp, generated_tokens: args.tg, parallel: args.parallel };
    let needed = (args.pp + 16).max(args.parallel * args.tg + 16) as u32;
    let options = LoadOptions {
        threads: args.threads,
        max_sequences: Some(args.parallel.max(1) as u32),
        context_length: Some(needed),
        cache_tokens: args.cache_tokens.or(Some(needed)),
        ..LoadOptions::default()
    };
    let report: BenchReport = match args.backend {
        BackendName::LlamaCpp => LlamaCppBackend::new().load_model(&args.model, &options)?.bench(&config)?,
        BackendName::Candle => CandleBackend::new().load_model(&args.model, &options)?.bench(&config)?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: pp{} {:.1} tokens/s, tg{}{} {:.1} tokens/s",
            report.backend,
            args.pp,
            report.pp_tps,
            args.tg,
            if args.parallel > 1 { format!(" x{}", args.parallel) } else { String::new() },
            report.tg_tps
        );
    }
    Ok(())
}
