//! `modelforge-server`: an OpenAI-compatible HTTP API over a local model.
//!
//! ```text
//! modelforge-server --model SmolLM2-135M-Instruct.Q4_1.gguf --addr 127.0.0.1:8080
//! curl -s localhost:8080/v1/auth/login -d '{"username":"lina","password":"..."}' -H 'content-type: application/json'
//! curl -s localhost:8080/v1/chat/completions -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
//!      -d '{"messages":[{"role":"user","content":"Hi"}]}'
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use modelforge_core::LoadOptions;
use modelforge_examples::server::{AppState, router};
use modelforge_examples::setup;
use modelforge_memory::MemoryBank;

/// Serve a local model over an OpenAI-compatible API.
#[derive(Parser)]
#[command(name = "modelforge-server", version, about)]
struct Args {
    /// Where users, sessions and models live [default: ~/.local/share/modelforge].
    #[arg(long, env = "MODELFORGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A GGUF file, or the name of a model under DATA_DIR/models.
    #[arg(long)]
    model: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Context window in tokens.
    #[arg(long)]
    ctx_size: Option<u32>,
    /// How llama.cpp stores the KV cache.
    #[arg(long, value_enum, default_value = "f16")]
    kv_cache: setup::KvCacheArg,
    /// The sentence embedder for memory search (a directory, or `none`); see `modelforge chat
    /// --embedder`.
    #[arg(long)]
    embedder: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MODELFORGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let data_dir = setup::data_dir(args.data_dir)?;
    let store = setup::open_store(&data_dir)?;
    let options = LoadOptions { context_length: args.ctx_size, ..LoadOptions::default() };
    let model = setup::load_model(&data_dir, &args.model, &options, args.kv_cache)?;
    let model_id = model.info().name.clone();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, model = %model_id, "listening");
    let embedder = setup::open_embedder(&data_dir, args.embedder.as_deref())?;
    let memory = Arc::new(MemoryBank::new(Arc::clone(&store), embedder));
    axum::serve(listener, router(AppState { store, model, model_id, memory }))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
