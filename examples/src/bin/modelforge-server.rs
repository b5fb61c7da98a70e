//! `modelforge-server`: the native API, the OpenAI-compatible API and `/metrics` over local
//! models, on SQLite or on a PostgreSQL database shared by several replicas.
//!
//! ```text
//! modelforge-server                                  # serves the local models it finds
//! modelforge-server --model org/repo:Q4_K_M --addr 127.0.0.1:8080
//! curl -s localhost:8080/api/auth/register -H 'content-type: application/json' \
//!      -d '{"username":"lina","password":"a long password"}'
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use clap::Parser;
use modelforge_core::SessionStore;
use modelforge_core::{CachedModel, CancelToken, LoadOptions, ModelHub};
use modelforge_examples::server::openai::ServedEmbedder;
use modelforge_examples::server::replies::Replies;
use modelforge_examples::server::{ApiError, AppState, ModelPool, Registration, app};
use modelforge_examples::setup;
use modelforge_memory::{ChatOptions, Conversation, MemoryBank};
use tower::ServiceExt as _;

/// What a newcomer with no model at all gets, pulled from the Hub on first start.
const DEFAULT_MODEL: &str = "Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M";

/// Serve local models: a native API with users, sessions and memory, and an OpenAI-compatible
/// API.
#[derive(Parser)]
#[command(name = "modelforge-server", version, about)]
struct Args {
    /// Where users, sessions and models live [default: ~/.local/share/modelforge].
    #[arg(long, env = "MODELFORGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A model to serve (a GGUF file, a name under DATA_DIR/models, or a Hub reference); may be
    /// given several times, the first is the default. Without it, the local models found are
    /// served.
    #[arg(long)]
    model: Vec<String>,
    /// The Hub reference pulled (with a progress bar) when no `--model` is given and no local
    /// model is found.
    #[arg(long, env = "MODELFORGE_DEFAULT_MODEL", default_value = DEFAULT_MODEL)]
    default_model: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// A PostgreSQL database shared by several replicas (then MODELFORGE_JWT_SECRET or
    /// MODELFORGE_JWT_SECRET_FILE is required) [default: SQLite in DATA_DIR].
    #[arg(long, env = "MODELFORGE_DATABASE_URL")]
    database_url: Option<String>,
    /// Whether people may register themselves (an admin can also close it at run time).
    #[arg(long, value_enum, default_value = "open")]
    registration: Registration,
    /// The most models kept in memory; the least recently used is unloaded first.
    #[arg(long, default_value_t = 2)]
    max_loaded_models: usize,
    /// Context window in tokens [default: the model's, at most 4096].
    #[arg(long)]
    ctx_size: Option<u32>,
    /// Inference threads [default: all cores].
    #[arg(long, env = "MODELFORGE_THREADS")]
    threads: Option<u32>,
    /// How llama.cpp stores the KV cache.
    #[arg(long, value_enum, default_value_t)]
    kv_cache: setup::KvCacheArg,
    /// The backend [default: llama-cpp for GGUF files, candle for safetensors directories].
    #[arg(long, value_enum)]
    backend: Option<setup::BackendArg>,
    /// The chat template instead of the models' own: a format (chatml, gemma, llama3, llama2,
    /// mistral, phi3, zephyr, deepseek, plain) or a Jinja file; see `modelforge chat
    /// --chat-template`.
    #[arg(long, value_name = "NAME|FILE")]
    chat_template: Option<String>,
    /// The sentence embedder for memory search (a directory, or `none`); see `modelforge chat
    /// --embedder`.
    #[arg(long)]
    embedder: Option<String>,
    /// The system prompt of every chat.
    #[arg(long, default_value = modelforge_memory::DEFAULT_SYSTEM_PROMPT)]
    system: String,
    /// Also let the model extract memories, besides the rules.
    #[arg(long)]
    llm_memory: bool,
    /// Also remember, in the user's own words, what they say about themself (home, work,
    /// family, health, diet, languages, pronouns, name) when no rule reads it: more is
    /// remembered, at a cost in precision and in stale facts (see the README).
    #[arg(long, env = "MODELFORGE_MEMORY_OWN_WORDS")]
    memory_own_words: bool,
    #[command(flatten)]
    web: setup::WebArgs,
    /// Accept any caller on the OpenAI-compatible API (`/v1`), for local tools that cannot log
    /// in. Refused unless the address is loopback.
    #[arg(long)]
    no_auth: bool,
    /// A web page on another origin that may call the APIs from a browser, as
    /// scheme://host[:port] (repeat it, or * for any); its requests still need a token or key
    /// (except on /v1 with --no-auth).
    /// Default: only the server's own page.
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = modelforge_examples::server::cors_origin)]
    cors_origins: Vec<String>,
    /// How long running replies may take to finish after Ctrl-C or SIGTERM, in seconds.
    #[arg(long, default_value_t = 30)]
    shutdown_grace: u64,
}

/// After the running replies are done, how long open connections get to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MODELFORGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.chain().map(ToString::to_string).collect::<Vec<_>>().join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.no_auth && !args.addr.ip().is_loopback() {
        anyhow::bail!(
            "--no-auth lets anyone who can reach {} use the models: it is only allowed on a loopback \
             address (127.0.0.1 or ::1); use an API key instead",
            args.addr
        );
    }
    if args.no_auth && args.cors_origins.iter().any(|o| o == "*") {
        anyhow::bail!(
            "--cors-origin '*' with --no-auth would let every web page a browser here opens use the \
             models: name the origins that may (--cors-origin http://localhost:5173)"
        );
    }
    let data_dir = setup::data_dir(args.data_dir.clone())?;
    let store = setup::open_store_at(&data_dir, args.database_url.as_deref())?;

    // Listen first: while the model is pulled and loaded (minutes on a first start), every
    // request, `/health` included, gets a JSON 503 `model_loading` instead of a refused
    // connection.
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let ready: Arc<OnceLock<Ready>> = Arc::default();
    let loading_cancel = CancelToken::new();
    let grace = Duration::from_secs(args.shutdown_grace);
    let (drained, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let stopping = {
        let (ready, loading_cancel) = (Arc::clone(&ready), loading_cancel.clone());
        async move {
            shutdown_signal().await;
            loading_cancel.cancel();
            if let Some(replies) = ready.get().map(|r| Arc::clone(&r.replies)) {
                // New replies get a 503 and /health says so; running ones go on.
                replies.close();
                eprintln!("modelforge-server: stopping; letting running replies finish (at most {grace:?})");
                let deadline = tokio::time::Instant::now() + grace;
                while !replies.is_empty() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let _ = drained.send(());
        }
    };
    let server = axum::serve(listener, gate(Arc::clone(&ready))).with_graceful_shutdown(stopping);
    let mut server = std::pin::pin!(server.into_future());

    let loading = tokio::task::spawn_blocking(move || load(&args, &data_dir, store, &loading_cancel));
    let (state, default) = tokio::select! {
        loaded = loading => loaded.context("loading the model panicked")??,
        served = &mut server => {
            // Stopped while loading.
            served?;
            return Ok(());
        }
    };
    let replies = Arc::clone(&state.replies);
    if ready.set(Ready { app: app(state), replies }).is_err() {
        unreachable!("the server is made ready once");
    }
    tracing::info!(%addr, model = %default, "listening");
    eprintln!("modelforge-server: serving {default} at http://{addr}/ (Ctrl-C to stop)");

    // axum then waits for every open connection; a stream that outlives the grace period
    // (an OpenAI client reading a long completion) must not keep the process alive.
    let bounded = async {
        if drained_rx.await.is_ok() {
            tokio::time::sleep(CLOSE_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        () = bounded => eprintln!("modelforge-server: stopped with connections still open"),
    }
    Ok(())
}

/// The served app once the model is loaded, and its running replies (for a graceful stop).
struct Ready {
    app: axum::Router,
    replies: Arc<Replies>,
}

/// The service on the socket: the app once it is [`Ready`], a JSON 503 `model_loading` before.
fn gate(ready: Arc<OnceLock<Ready>>) -> axum::Router {
    axum::Router::new().fallback(move |request: axum::extract::Request| {
        let ready = Arc::clone(&ready);
        async move {
            match ready.get() {
                Some(ready) => match ready.app.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model_loading",
                    "the server is loading its model; try again shortly",
                )
                .into_response(),
            }
        }
    })
}

/// Finds (or pulls) the models, loads the default one and assembles the app's state; runs on
/// a blocking thread while the socket already answers.
fn load(
    args: &Args,
    data_dir: &std::path::Path,
    store: Arc<dyn SessionStore>,
    cancel: &CancelToken,
) -> anyhow::Result<(AppState, String)> {
    let models = models_to_serve(data_dir, &args.model, &args.default_model, cancel)?;
    let default = models.first().map(|m| m.name.clone()).context("no model to serve")?;
    let options = LoadOptions {
        context_length: args.ctx_size,
        threads: args.threads,
        chat_template: args.chat_template.clone(),
        ..LoadOptions::default()
    };
    let pool = ModelPool::new(
        data_dir.to_owned(),
        models,
        default.clone(),
        options,
        setup::Loader { backend: args.backend, kv_cache: args.kv_cache },
        args.max_loaded_models,
    );
    let model = pool.get(None).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let embedder = setup::open_embedder(data_dir, args.embedder.as_deref())?;
    let web = setup::open_web(&args.web, embedder.clone())?;
    let served_embedder = embedder
        .clone()
        .map(|embedder| ServedEmbedder { name: embedder_name(args.embedder.as_deref()), embedder });
    let memory = Arc::new(MemoryBank::new(store.clone(), embedder));
    let extractors = setup::memory_extractors(&model, args.memory_own_words, args.llm_memory);
    // No state files: llama.cpp keeps recent conversations' prefixes warm in memory.
    let mut chat = Conversation::new(model, store.clone(), store.clone(), Arc::clone(&memory))
        .with_options(ChatOptions::default().with_system_prompt(args.system.as_str()))
        .with_extractors(extractors);
    if let Some(web) = web {
        chat = chat.with_web(web);
    }
    let mut state = AppState::new(store, Arc::new(pool), memory, chat);
    state.registration = args.registration;
    state.shared_store = args.database_url.is_some();
    state.no_auth = args.no_auth;
    state.cors_origins = args.cors_origins.clone();
    state.embedder = served_embedder;
    Ok((state, default))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// What `/v1` calls the embedder: its directory's name, else the default embedder's.
fn embedder_name(explicit: Option<&str>) -> String {
    let chosen = explicit.map(str::to_owned).or_else(|| std::env::var("MODELFORGE_EMBEDDER").ok());
    chosen
        .as_deref()
        .and_then(|dir| std::path::Path::new(dir).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| setup::DEFAULT_EMBEDDER_REPO.rsplit('/').next().unwrap_or("embedder").to_owned())
}

/// The models named on the command line; else the local ones (DATA_DIR/models, the Hugging
/// Face cache, the test models); else `default_model` pulled from the Hub.
fn models_to_serve(
    data_dir: &std::path::Path,
    named: &[String],
    default_model: &str,
    cancel: &CancelToken,
) -> anyhow::Result<Vec<CachedModel>> {
    if !named.is_empty() {
        return named.iter().map(|reference| setup::resolve_model(data_dir, reference)).collect();
    }
    let found = setup::local_models(data_dir);
    if !found.is_empty() {
        return Ok(found);
    }
    let hub = setup::hub();
    if std::env::var_os("HF_HUB_OFFLINE").is_some_and(|v| v != "0") {
        anyhow::bail!(
            "no model found and HF_HUB_OFFLINE is set: pass --model FILE.gguf, put a GGUF file in {}, \
             or `modelforge pull org/repo` while online",
            setup::catalog(data_dir).models_dir().display()
        );
    }
    eprintln!("no local model found: pulling {default_model} from the Hugging Face Hub");
    let bar = indicatif::ProgressBar::new(0);
    let mut on_progress = |p: modelforge_core::Progress| {
        bar.set_length(p.total.unwrap_or(0));
        bar.set_position(p.downloaded);
    };
    let model = hub.pull(default_model, &mut on_progress, cancel).with_context(|| {
        format!(
            "no local model, and pulling {default_model} failed: pass --model FILE.gguf, put a GGUF file in {}, \
             or `modelforge pull org/repo`",
            setup::catalog(data_dir).models_dir().display()
        )
    })?;
    bar.finish_and_clear();
    Ok(vec![model])
}
