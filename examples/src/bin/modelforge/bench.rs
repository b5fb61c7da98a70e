//! `modelforge bench`: llama-bench-style speed measurement of a backend.

use std::path::PathBuf;

use clap::Args;
use modelforge_core::LoadOptions;
use modelforge_engine::{Bench, BenchConfig, BenchReport, CandleBackend, LlamaCppBackend};
use modelforge_examples::setup::{self, BackendArg, KvCacheArg};

/// Arguments of `modelforge bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// The model: a GGUF file or a safetensors directory.
    #[arg(long)]
    model: PathBuf,
    /// The backend to measure [default: llama-cpp for a GGUF file, candle for a safetensors
    /// directory].
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Prompt tokens processed in one batch.
    #[arg(long, default_value_t = 512)]
    pp: usize,
    /// Tokens generated one at a time.
    #[arg(long, default_value_t = 128)]
    tg: usize,
    /// Inference threads [default: all cores].
    #[arg(long, env = "MODELFORGE_THREADS")]
    threads: Option<u32>,
    /// Sequences generating together (aggregate tokens/s).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// KV cache size in tokens (llama.cpp).
    #[arg(long)]
    cache_tokens: Option<u32>,
    /// How llama.cpp stores the KV cache.
    #[arg(long, value_enum, default_value_t)]
    kv_cache: KvCacheArg,
    /// Print `{"backend", "pp_tps", "tg_tps"}`.
    #[arg(long)]
    json: bool,
}

/// Gives candle its thread count through the environment, the only way it takes one: candle
/// sizes its pools once per process from `CANDLE_NUM_THREADS` or `RAYON_NUM_THREADS`, and
/// without either it counts physical cores (a virtual machine may report half its CPUs) and
/// re-reads `/proc/cpuinfo` on every matrix product. Sets `RAYON_NUM_THREADS` to `--threads`
/// (default: all CPUs) unless either variable is set already.
///
/// Call it before the process starts a second thread.
#[allow(unsafe_code)]
pub fn set_candle_threads(args: &BenchArgs) {
    let from_env = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"].iter().any(|v| std::env::var_os(v).is_some());
    if matches!(backend(args), Ok(BackendArg::Candle)) && !from_env {
        let threads = args.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |t| t.max(1) as usize,
        );
        // SAFETY: called at the start of `main`, while this is the only thread, so nothing
        // reads the environment at the same time.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

/// The backend `--backend` names, else the one for the model's format.
fn backend(args: &BenchArgs) -> anyhow::Result<BackendArg> {
    setup::backend_for(&modelforge_core::inspect(&args.model)?, args.backend)
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
    let report: BenchReport = match backend(&args)? {
        BackendArg::LlamaCpp => LlamaCppBackend::new()
            .with_kv_cache_type(args.kv_cache.into())
            .load_model(&args.model, &options)?
            .bench(&config)?,
        BackendArg::Candle => CandleBackend::new().load_model(&args.model, &options)?.bench(&config)?,
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
