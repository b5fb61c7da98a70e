//! The native chat API of `modelforge-server`, measured over real loopback HTTP in one process.
//!
//! The server runs in-process as the tests run it (the real [`app`] router on `127.0.0.1:0`,
//! SQLite in a temporary directory, the test models' SmolLM2 loaded by llama.cpp with a
//! 4096-token context, memory without an embedder), and a `reqwest` client talks to it the way
//! a web page does: register, create sessions, send messages and read the reply as server-sent
//! events (`piece` events, then `done` with the usage). Four figures, each a ratio or a bound
//! measured in this run, so a noisy machine moves both sides of a ratio together:
//!
//! 1. **KV reuse across requests**: a session holding about 1,500 tokens of earlier
//!    conversation (written straight into the store), then two turns through HTTP. The first
//!    processes the whole history (cold); the second should find it in llama.cpp's scheduler
//!    and process only the new exchange. Time to first piece, second over first.
//! 2. **One stream against the model**: the same prompt and settings (greedy, 128 tokens)
//!    through HTTP and through [`LoadedModel::chat`] on the same loaded model, alternated.
//!    Tokens/s is completion tokens over the time from the first piece to the end (`done` over
//!    HTTP, which includes storing the exchange and learning from it). HTTP over direct.
//! 3. **Concurrency**: aggregate completion tokens/s of eight users' sessions chatting at once
//!    (64 tokens each) over one session alone with the same settings. The scheduler decodes
//!    concurrent replies in one batch, so eight should cost much less than eight times one.
//! 4. **Non-chat latency**: `GET /api/sessions` (a user with 50 sessions) from 50 concurrent
//!    clients, 40 requests each, while nothing generates: p50 and p99, with one client alone
//!    as the reference. The clients send their next request as soon as the last is answered
//!    and share the machine with the server, so the mean latency is about 50 / (requests per
//!    second): a p99 under 20 ms needs well over 2,500 requests/s from the same cores.
//!
//! Figures 1 to 3 repeat `--runs` times and report medians. The workspace's own crates are
//! built unoptimized in the dev profile, but llama.cpp and every other dependency are optimized
//! there too, so the dev build measures what matters:
//!
//! ```text
//! cargo run -p modelforge-benches --bin server-bench -- [--threads N] [--runs 3] [--json]
//! ```

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use modelforge_core::{ChatMessage, GenerationParams, LoadOptions, LoadedModel, SessionId, SessionStore};
use modelforge_examples::server::{AppState, ModelPool, app};
use modelforge_examples::setup;
use modelforge_memory::{Conversation, DEFAULT_SYSTEM_PROMPT, MemoryBank};
use modelforge_store::{SqliteStore, StoreOptions, load_or_create_secret};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

#[derive(Parser)]
#[command(about = "The server's chat API over loopback HTTP: KV reuse, stream speed, concurrency, latency")]
struct Args {
    /// Inference threads [default: every core].
    #[arg(long)]
    threads: Option<u32>,
    /// Repetitions of figures 1 to 3 (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Earlier conversation in the KV-reuse session, in tokens.
    #[arg(long, default_value_t = 1500)]
    history_tokens: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// How long token checks reuse what they read about the user, in milliseconds
    /// [default: the store's default]; 0 reads the database on every request.
    #[arg(long)]
    auth_cache_ttl_ms: Option<u64>,
    /// Measure only these figures (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Figure>,
}

/// The figures, for `--only`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Figure {
    /// 1: time to first token of a second turn (KV reuse across HTTP requests).
    KvReuse,
    /// 2: one stream's tokens/s against the model directly.
    Stream,
    /// 3: eight sessions at once against one.
    Concurrency,
    /// 4: session-list latency under 50 clients.
    List,
}

const PASSWORD: &str = "bench-password-42";
const CONTEXT_LENGTH: u32 = 4096;
const STREAM_PROMPT: &str = "Write a long story about a lighthouse keeper.";
const STREAM_TOKENS: u32 = 128;
const CONCURRENT_SESSIONS: usize = 8;
const CONCURRENT_TOKENS: u32 = 64;
/// Story subjects for figure 3: the first for the session alone, the others for the eight.
const SUBJECTS: [&str; CONCURRENT_SESSIONS + 1] = [
    "a baker",
    "a train driver",
    "a beekeeper",
    "a clockmaker",
    "a fisherman",
    "a librarian",
    "a gardener",
    "a mountain guide",
    "a glassblower",
];
const LIST_CLIENTS: usize = 50;
const LIST_REQUESTS: usize = 40;
const LIST_SESSIONS: usize = 50;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u32));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let mut store_options = StoreOptions::with_secret(load_or_create_secret(dir.path())?);
    if let Some(ms) = args.auth_cache_ttl_ms {
        store_options.auth_cache_ttl = Duration::from_millis(ms);
    }
    let store: Arc<dyn SessionStore> =
        Arc::new(SqliteStore::open(&dir.path().join("chat.db"), store_options)?);
    let path = modelforge_testkit::smollm2_gguf();
    let options = LoadOptions {
        context_length: Some(CONTEXT_LENGTH),
        threads: Some(threads),
        ..LoadOptions::default()
    };
    let model =
        setup::load_model(dir.path(), path.to_str().context("model path")?, &options, Default::default())?;
    let api = Api {
        http: reqwest::Client::new(),
        base: rt.block_on(serve(dir.path(), store.clone(), model.clone()))?,
    };
    let bench = Bench { rt, api, store, model, runs: args.runs };

    let mut report = Report::default();
    let wanted = |figure| args.only.is_empty() || args.only.contains(&figure);
    if wanted(Figure::KvReuse) {
        bench.kv_reuse(args.history_tokens, &mut report)?;
    }
    if wanted(Figure::Stream) {
        bench.stream_speed(&mut report)?;
    }
    if wanted(Figure::Concurrency) {
        bench.concurrency(&mut report)?;
    }
    if wanted(Figure::List) {
        bench.list_latency(&mut report)?;
    }
    let setup = json!({
        "model": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "threads": threads,
        "context_length": CONTEXT_LENGTH,
        "runs": args.runs,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json(setup))?);
    } else {
        report.print(&setup);
    }
    Ok(())
}

/// The server with `model` as its only model and `data_dir` as its data directory, on a free
/// loopback port; its base URL.
async fn serve(
    data_dir: &Path,
    store: Arc<dyn SessionStore>,
    model: Arc<dyn LoadedModel>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let memory = Arc::new(MemoryBank::new(store.clone(), None));
    let pool = ModelPool::new(
        data_dir.to_owned(),
        Vec::new(),
        "smollm2".into(),
        LoadOptions::default(),
        Default::default(),
        1,
    );
    pool.insert("smollm2", model.clone());
    let chat = Conversation::new(model, store.clone(), store.clone(), Arc::clone(&memory));
    let state = AppState::new(store, Arc::new(pool), memory, chat);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app(state)).await {
            eprintln!("server-bench: the server stopped: {err}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// A client of the native API.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

/// One turn as the client saw it: times from sending the request, and the `done` usage.
#[derive(Clone, Copy, Debug)]
struct Turn {
    first_piece: Duration,
    done: Duration,
    prompt_tokens: u32,
    completion_tokens: u32,
    cached_tokens: u32,
}

impl Turn {
    /// Completion tokens over the time from the first piece to `done`.
    fn tokens_per_second(&self) -> f64 {
        f64::from(self.completion_tokens) / (self.done - self.first_piece).as_secs_f64()
    }
}

impl Api {
    /// Registers `username` and returns its access token.
    async fn register(&self, username: &str) -> anyhow::Result<String> {
        let body = json!({"username": username, "password": PASSWORD});
        let reply = self.json(self.http.post(format!("{}/api/auth/register", self.base)).json(&body)).await?;
        Ok(reply["access_token"].as_str().context("no access_token in the register reply")?.to_owned())
    }

    /// A new session of the token's user.
    async fn new_session(&self, token: &str) -> anyhow::Result<String> {
        let request =
            self.http.post(format!("{}/api/sessions", self.base)).bearer_auth(token).json(&json!({}));
        let reply = self.json(request).await?;
        Ok(reply["id"].as_str().context("no id in the new session")?.to_owned())
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "{status}: {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// Sends `content` to `session` (greedy, at most `max_tokens`) and reads the reply's
    /// events up to `done`.
    async fn chat(&self, token: &str, session: &str, content: &str, max_tokens: u32) -> anyhow::Result<Turn> {
        let body = json!({"content": content, "params": {"max_tokens": max_tokens, "temperature": 0}});
        let url = format!("{}/api/sessions/{session}/messages", self.base);
        let started = Instant::now();
        let mut response = self.http.post(url).bearer_auth(token).json(&body).send().await?;
        if !response.status().is_success() {
            bail!("{}: {}", response.status(), response.text().await?);
        }
        let (mut buffer, mut first_piece) = (Vec::new(), None);
        while let Some(chunk) = response.chunk().await? {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                let (name, data) = parse_event(std::str::from_utf8(&event)?);
                match name {
                    "piece" => {
                        first_piece.get_or_insert_with(|| started.elapsed());
                    }
                    "done" => return done_turn(started.elapsed(), first_piece, &serde_json::from_str(data)?),
                    "error" => bail!("the reply failed: {data}"),
                    _ => {} // keep-alive comments
                }
            }
        }
        bail!("the event stream ended without `done`")
    }
}

/// The event name and data of one server-sent event (one-line data, as the server sends).
fn parse_event(event: &str) -> (&str, &str) {
    let field = |name: &str| event.lines().find_map(|l| l.strip_prefix(name)).map_or("", str::trim_start);
    (field("event:"), field("data:"))
}

fn done_turn(done: Duration, first_piece: Option<Duration>, data: &Value) -> anyhow::Result<Turn> {
    let usage = &data["usage"];
    let count = |field: &str| usage[field].as_u64().map(|n| n as u32).context("usage without token counts");
    Ok(Turn {
        first_piece: first_piece.context("`done` came before any piece")?,
        done,
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        cached_tokens: count("cached_tokens")?,
    })
}

/// The running server and what the figures need around it.
struct Bench {
    rt: Runtime,
    api: Api,
    store: Arc<dyn SessionStore>,
    model: Arc<dyn LoadedModel>,
    runs: usize,
}

impl Bench {
    /// Figure 1. Each run has its own conversation (the run number is in its first message),
    /// so no run finds another's history in the cache.
    fn kv_reuse(&self, history_tokens: usize, report: &mut Report) -> anyhow::Result<()> {
        let token = self.rt.block_on(self.api.register("reuse"))?;
        let actor = self.store.login("reuse", PASSWORD)?.actor();
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        let mut history_len = 0;
        for run in 0..self.runs {
            let id = self.rt.block_on(self.api.new_session(&token))?;
            let session: SessionId = id.parse()?;
            let history = self.history(run, history_tokens)?;
            history_len = history.len();
            for message in &history {
                self.store.append_message(&actor, session, message, None)?;
            }
            cold.push(self.rt.block_on(self.api.chat(&token, &id, "Which day had the longest walk?", 16))?);
            let next = "And which museum would you skip if it rains?";
            warm.push(self.rt.block_on(self.api.chat(&token, &id, next, 16))?);
        }
        let ms = |turns: &[Turn]| median(turns.iter().map(|t| t.first_piece.as_secs_f64() * 1e3));
        let tokens = |turns: &[Turn], f: fn(&Turn) -> u32| median(turns.iter().map(|t| f64::from(f(t))));
        let (cold_ms, warm_ms) = (ms(&cold), ms(&warm));
        report.detail(
            "kv_reuse.history_messages",
            "KV reuse: stored messages before turn 1",
            history_len as f64,
            "",
        );
        report.detail("kv_reuse.turn1_ttft_ms", "KV reuse: turn 1 (cold) time to first piece", cold_ms, "ms");
        report.detail("kv_reuse.turn2_ttft_ms", "KV reuse: turn 2 time to first piece", warm_ms, "ms");
        for (name, turns) in [("turn1", &cold), ("turn2", &warm)] {
            let label = format!("KV reuse: {name} prompt / cached tokens");
            let key = format!("kv_reuse.{name}_prompt_tokens");
            report.detail(&key, &label, tokens(turns, |t| t.prompt_tokens), "tok");
            let key = format!("kv_reuse.{name}_cached_tokens");
            report.detail(&key, "", tokens(turns, |t| t.cached_tokens), "tok");
        }
        report.goal(
            "kv_reuse.ratio",
            "KV reuse: turn 2 / turn 1 time to first piece",
            warm_ms / cold_ms,
            Goal::AtMost(0.25),
        );
        Ok(())
    }

    /// About `tokens` tokens of travel chat (with the server's system prompt), as exchanges.
    fn history(&self, run: usize, tokens: usize) -> anyhow::Result<Vec<ChatMessage>> {
        let mut messages = vec![ChatMessage::system(DEFAULT_SYSTEM_PROMPT)];
        let mut day = 0;
        while self.model.count_tokens(&self.model.render_chat(&messages, false)?)? < tokens {
            day += 1;
            messages.push(ChatMessage::user(format!(
                "Trip {run}, day {day}: which museum in Kyoto should I see, and how long is the walk from the station?"
            )));
            messages.push(ChatMessage::assistant(format!(
                "On day {day}, visit the museum by the river; the walk from the station takes about twenty minutes."
            )));
        }
        Ok(messages.split_off(1))
    }

    /// Figure 2. A warm-up of each path first (neither is timed), then the two alternated.
    fn stream_speed(&self, report: &mut Report) -> anyhow::Result<()> {
        let token = self.rt.block_on(self.api.register("stream"))?;
        let (mut http, mut direct) = (Vec::new(), Vec::new());
        for run in 0..=self.runs {
            let id = self.rt.block_on(self.api.new_session(&token))?;
            let over_http = self.rt.block_on(self.api.chat(&token, &id, STREAM_PROMPT, STREAM_TOKENS))?;
            let called = self.direct()?;
            if run > 0 {
                http.push(over_http);
                direct.push(called);
            }
        }
        let tokens = median(http.iter().map(|t| f64::from(t.completion_tokens)));
        let direct_tokens = median(direct.iter().map(|t| f64::from(t.completion_tokens)));
        let http_speed = median(http.iter().map(Turn::tokens_per_second));
        let direct_speed = median(direct.iter().map(Turn::tokens_per_second));
        report.detail(
            "stream.http_completion_tokens",
            "One stream: completion tokens, HTTP / direct",
            tokens,
            "tok",
        );
        report.detail("stream.direct_completion_tokens", "", direct_tokens, "tok");
        report.detail("stream.http_tokens_per_s", "One stream: HTTP", http_speed, "tok/s");
        report.detail(
            "stream.direct_tokens_per_s",
            "One stream: LoadedModel::chat directly",
            direct_speed,
            "tok/s",
        );
        report.goal(
            "stream.ratio",
            "One stream: HTTP / direct tokens/s",
            http_speed / direct_speed,
            Goal::AtLeast(0.95),
        );
        Ok(())
    }

    /// The stream prompt through `LoadedModel::chat`, with the system prompt and the settings
    /// the server builds from `{"max_tokens": 128, "temperature": 0}`.
    fn direct(&self) -> anyhow::Result<Turn> {
        let messages = [ChatMessage::system(DEFAULT_SYSTEM_PROMPT), ChatMessage::user(STREAM_PROMPT)];
        let params =
            GenerationParams { max_tokens: STREAM_TOKENS, temperature: 0.0, ..GenerationParams::default() };
        let started = Instant::now();
        let mut first_piece = None;
        let generation = self.model.chat(&messages, &params, &mut |_| {
            first_piece.get_or_insert_with(|| started.elapsed());
            ControlFlow::Continue(())
        })?;
        let usage = generation.usage;
        Ok(Turn {
            first_piece: first_piece.context("the model wrote nothing")?,
            done: started.elapsed(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.cached_tokens,
        })
    }

    /// Figure 3. Tokens/s counts from sending to `done` on both sides (prompts are short).
    fn concurrency(&self, report: &mut Report) -> anyhow::Result<()> {
        let tokens: Vec<String> = (0..CONCURRENT_SESSIONS)
            .map(|i| self.rt.block_on(self.api.register(&format!("concurrent{i}"))))
            .collect::<Result<_, _>>()?;
        let (mut alone, mut together, mut eight_tokens) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let id = self.rt.block_on(self.api.new_session(&tokens[0]))?;
            let turn =
                self.rt.block_on(self.api.chat(&tokens[0], &id, &story(SUBJECTS[0]), CONCURRENT_TOKENS))?;
            alone.push(f64::from(turn.completion_tokens) / turn.done.as_secs_f64());
            let (generated, wall) = self.rt.block_on(self.eight_at_once(&tokens))?;
            together.push(f64::from(generated) / wall.as_secs_f64());
            eight_tokens.push(f64::from(generated));
        }
        let (alone, together) = (median(alone), median(together));
        report.detail("concurrency.one_tokens_per_s", "Concurrency: one session alone", alone, "tok/s");
        let label = format!("Concurrency: {CONCURRENT_SESSIONS} sessions at once, aggregate");
        report.detail("concurrency.eight_tokens_per_s", &label, together, "tok/s");
        report.detail(
            "concurrency.eight_completion_tokens",
            "Concurrency: tokens the eight wrote",
            median(eight_tokens),
            "tok",
        );
        report.goal(
            "concurrency.ratio",
            "Concurrency: eight / one tokens/s",
            together / alone,
            Goal::AtLeast(1.5),
        );
        Ok(())
    }

    /// Every user of `tokens` asks for a story in a new session at once; the completion
    /// tokens of all and the time until the last `done`.
    async fn eight_at_once(&self, tokens: &[String]) -> anyhow::Result<(u32, Duration)> {
        let mut sessions = Vec::new();
        for token in tokens {
            sessions.push((token.clone(), self.api.new_session(token).await?));
        }
        let started = Instant::now();
        let tasks: Vec<_> = sessions
            .into_iter()
            .zip(&SUBJECTS[1..])
            .map(|((token, id), subject)| {
                let api = self.api.clone();
                let prompt = story(subject);
                tokio::spawn(async move { api.chat(&token, &id, &prompt, CONCURRENT_TOKENS).await })
            })
            .collect();
        let mut generated = 0;
        for task in tasks {
            generated += task.await??.completion_tokens;
        }
        Ok((generated, started.elapsed()))
    }

    /// Figure 4. Every request is timed on its own, after one untimed request per client
    /// (connections opened, pages of the server's code touched).
    fn list_latency(&self, report: &mut Report) -> anyhow::Result<()> {
        let token = self.rt.block_on(self.api.register("lister"))?;
        let actor = self.store.login("lister", PASSWORD)?.actor();
        for i in 0..LIST_SESSIONS {
            self.store.create_session(&actor, &format!("Session {i}"))?;
        }
        self.rt.block_on(self.list_from_clients(&token, LIST_CLIENTS, 1))?;
        let mut alone = self.rt.block_on(self.list_from_clients(&token, 1, LIST_REQUESTS))?;
        let started = Instant::now();
        let cpu_before = process_cpu_seconds();
        let mut latencies = self.rt.block_on(self.list_from_clients(&token, LIST_CLIENTS, LIST_REQUESTS))?;
        let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
        if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds()) {
            // Server and clients share this process: the CPU one request costs both sides.
            let per_request = (after - before) / latencies.len() as f64 * 1e3;
            report.detail(
                "list.cpu_ms_per_request",
                "Session list: CPU per request (server + client)",
                per_request,
                "ms",
            );
        }
        let label = "Session list: one client alone, p50 / p99";
        report.detail("list.alone_p50_ms", label, percentile_ms(&mut alone, 0.5), "");
        report.detail("list.alone_p99_ms", "", percentile_ms(&mut alone, 0.99), "ms");
        let label = format!("Session list: {LIST_CLIENTS} clients x {LIST_REQUESTS} requests, p50");
        report.detail("list.p50_ms", &label, percentile_ms(&mut latencies, 0.5), "ms");
        report.detail("list.requests_per_s", "Session list: requests/s", rate, "req/s");
        let p99 = percentile_ms(&mut latencies, 0.99);
        report.goal("list.p99_ms", "Session list: p99 (ms)", p99, Goal::Below(20.0));
        Ok(())
    }

    /// `clients` tasks, each listing the sessions `requests` times one after the other; the
    /// time of every request.
    async fn list_from_clients(
        &self,
        token: &str,
        clients: usize,
        requests: usize,
    ) -> anyhow::Result<Vec<Duration>> {
        let clients: Vec<_> = (0..clients)
            .map(|_| {
                let (http, token) = (self.api.http.clone(), token.to_owned());
                let url = format!("{}/api/sessions", self.api.base);
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(requests);
                    for _ in 0..requests {
                        times.push(list_sessions(&http, &url, &token).await?);
                    }
                    anyhow::Ok(times)
                })
            })
            .collect();
        let mut all = Vec::new();
        for client in clients {
            all.extend(client.await??);
        }
        Ok(all)
    }
}

/// One `GET /api/sessions`, checked, and how long it took.
async fn list_sessions(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = http.get(url).bearer_auth(token).send().await?;
    anyhow::ensure!(response.status().is_success(), "GET /api/sessions: {}", response.status());
    let page: Value = response.json().await?;
    let listed = page["data"].as_array().map(Vec::len);
    anyhow::ensure!(listed == Some(LIST_SESSIONS), "expected {LIST_SESSIONS} sessions: {page}");
    Ok(started.elapsed())
}

fn story(subject: &str) -> String {
    format!("Write a long story about {subject}.")
}

/// User plus system CPU time of this process so far (every thread), from `/proc/self/stat`;
/// `None` where there is no such file. Unlike latency, CPU per request hardly moves when
/// other programs load the machine.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux ABI Rust targets.
    Some(ticks / 100.0)
}

/// The `q` quantile (nearest rank) of `times`, in milliseconds.
fn percentile_ms(times: &mut [Duration], q: f64) -> f64 {
    times.sort();
    times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What a figure is checked against.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    Below(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(bound) => value <= bound,
            Goal::AtLeast(bound) => value >= bound,
            Goal::Below(bound) => value < bound,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtMost(bound) => format!("<= {bound}"),
            Goal::AtLeast(bound) => format!(">= {bound}"),
            Goal::Below(bound) => format!("< {bound}"),
        }
    }
}

/// One printed figure: a measurement, or a figure checked against its goal.
struct Row {
    key: String,
    /// Empty: continues the row above (printed after it on the same line).
    label: String,
    value: f64,
    unit: &'static str,
    goal: Option<Goal>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn detail(&mut self, key: &str, label: &str, value: f64, unit: &'static str) {
        self.rows.push(Row { key: key.into(), label: label.into(), value, unit, goal: None });
    }

    fn goal(&mut self, key: &str, label: &str, value: f64, goal: Goal) {
        self.rows.push(Row { key: key.into(), label: label.into(), value, unit: "", goal: Some(goal) });
    }

    fn print(&self, setup: &Value) {
        println!("server-bench: {setup}");
        println!("{:<62} {:>18}  goal", "figure", "measured");
        let mut rows = self.rows.iter().peekable();
        while let Some(row) = rows.next() {
            let mut value = format!("{} {}", number(row.value), row.unit);
            while let Some(more) = rows.next_if(|r| r.label.is_empty()) {
                value = format!("{} / {} {}", number(row.value), number(more.value), more.unit);
            }
            let (goal, verdict) = match row.goal {
                Some(goal) => (goal.text(), if goal.met(row.value) { "met" } else { "MISSED" }),
                None => (String::new(), ""),
            };
            println!("{:<62} {:>18}  {:<10} {verdict}", row.label, value.trim_end(), goal);
        }
    }

    fn json(&self, setup: Value) -> Value {
        let mut figures = serde_json::Map::new();
        for row in &self.rows {
            let mut figure = json!({ "value": row.value, "unit": row.unit });
            if let Some(goal) = row.goal {
                figure["goal"] = json!(goal.text());
                figure["met"] = json!(goal.met(row.value));
            }
            figures.insert(row.key.clone(), figure);
        }
        json!({ "setup": setup, "figures": figures })
    }
}

/// Counts as integers; other values to about three significant figures.
fn number(value: f64) -> String {
    match value.abs() {
        v if v >= 100.0 || value.fract() == 0.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.3}"),
    }
}
