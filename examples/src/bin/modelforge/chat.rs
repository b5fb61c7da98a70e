//! `modelforge chat`: one scripted turn, or an interactive loop with session commands.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use clap::Args;
use std::sync::Arc;

use modelforge_core::{
    Actor, FinishReason, GenerationParams, LoadOptions, NewSession, SessionId, SessionStore,
};
use modelforge_examples::setup;
use modelforge_memory::{
    ChatOptions, ContextBudget, Conversation, DEFAULT_SYSTEM_PROMPT, DirStateCache, Learned, MemoryBank,
    MemoryMode, TurnOptions, TurnOutcome,
};
use serde_json::json;

/// Arguments of `modelforge chat`.
#[derive(Args)]
pub struct ChatArgs {
    /// The user to chat as (password from MODELFORGE_PASSWORD, else a prompt).
    #[arg(long)]
    user: String,
    /// A GGUF file, a safetensors directory, or the name of a model under DATA_DIR/models.
    #[arg(long)]
    model: String,
    /// Continue this session.
    #[arg(long, conflicts_with = "new_session")]
    session: Option<SessionId>,
    /// Start a new session (the default when --session is not given).
    #[arg(long)]
    new_session: bool,
    /// Send one message, print the reply and exit.
    #[arg(long)]
    message: Option<String>,
    /// With --message: print a JSON object instead of the reply text.
    #[arg(long, requires = "message")]
    json: bool,
    /// The system prompt.
    #[arg(long, default_value = DEFAULT_SYSTEM_PROMPT)]
    system: String,
    /// Most tokens in a reply.
    #[arg(long, default_value_t = 512)]
    max_tokens: u32,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Context window in tokens [default: the model's, at most 4096].
    #[arg(long)]
    ctx_size: Option<u32>,
    /// Inference threads [default: all cores].
    #[arg(long, env = "MODELFORGE_THREADS")]
    threads: Option<u32>,
    /// How llama.cpp stores the KV cache.
    #[arg(long, value_enum, default_value_t)]
    kv_cache: setup::KvCacheArg,
    /// The backend [default: llama-cpp for a GGUF file, candle for a safetensors directory].
    #[arg(long, value_enum)]
    backend: Option<setup::BackendArg>,
    /// The chat template instead of the model's own: a format (chatml, gemma, llama3, llama2,
    /// mistral, phi3, zephyr, deepseek, plain) or a Jinja file [default: the model's template,
    /// else the format its vocabulary shows, else plain User:/Assistant: text].
    #[arg(long, value_name = "NAME|FILE")]
    chat_template: Option<String>,
    /// Start a temporary session: memories are neither used nor learned in it.
    #[arg(long, conflicts_with = "session")]
    temporary: bool,
    /// Also let the model extract memories (grammar-constrained JSON), besides the rules.
    #[arg(long)]
    llm_memory: bool,
    /// Also remember, in the user's own words, what they say about themself (home, work,
    /// family, health, diet, languages, pronouns, name) when no rule reads it: more is
    /// remembered, at a cost in precision and in stale facts (see the README).
    #[arg(long, env = "MODELFORGE_MEMORY_OWN_WORDS")]
    memory_own_words: bool,
    /// The sentence embedder for memory search (a directory, or `none`) [default:
    /// MODELFORGE_EMBEDDER, else DATA_DIR/models/all-MiniLM-L6-v2 if present, else keywords
    /// only].
    #[arg(long)]
    embedder: Option<String>,
    /// The most memories injected into a prompt.
    #[arg(long, default_value_t = 5)]
    memories: usize,
    /// The share of the prompt budget memories may take.
    #[arg(long, default_value_t = ContextBudget::DEFAULT_MEMORY_SHARE)]
    memory_share: f32,
    /// Leave out old turns that do not fit instead of summarizing them.
    #[arg(long)]
    no_summary: bool,
    /// Search the web for each message and answer from the pages found, citing them (`/web`
    /// toggles it in the interactive chat).
    #[arg(long)]
    web: bool,
    #[command(flatten)]
    web_args: setup::WebArgs,
}

/// Runs `modelforge chat`.
pub fn run(data_dir: &Path, store: Arc<dyn SessionStore>, args: ChatArgs) -> anyhow::Result<()> {
    if args.web && args.web_args.search_url.is_none() {
        anyhow::bail!("--web needs a search service: give --search-url URL or set MODELFORGE_SEARCH_URL");
    }
    // Log in before the slow model load, so a wrong password fails fast.
    let actor = crate::login(store.as_ref(), &args.user)?.actor();
    if let Some(id) = args.session {
        store.get_session(&actor, id)?;
    }
    let options = LoadOptions {
        context_length: args.ctx_size,
        threads: args.threads,
        chat_template: args.chat_template.clone(),
        ..LoadOptions::default()
    };
    let loader = setup::Loader { backend: args.backend, kv_cache: args.kv_cache };
    let model = setup::load_model(data_dir, &args.model, &options, loader)?;
    let params = GenerationParams {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
        ..GenerationParams::default()
    };
    let embedder = setup::open_embedder(data_dir, args.embedder.as_deref())?;
    let web = setup::open_web(&args.web_args, embedder.clone())?;
    let bank = Arc::new(MemoryBank::new(store.clone(), embedder));
    let extractors = setup::memory_extractors(&model, args.memory_own_words, args.llm_memory);
    let options = ChatOptions::default()
        .with_system_prompt(args.system.as_str())
        .with_top_k(args.memories)
        .with_memory_share(args.memory_share)
        .with_summary(!args.no_summary);
    // Each run of the CLI is a new process: the sessions' model state waits in files.
    let mut chat = Conversation::new(Arc::clone(&model), store.clone(), store.clone(), bank)
        .with_options(options)
        .with_extractors(extractors)
        .with_state_cache(Arc::new(DirStateCache::new(data_dir.join("state"))));
    if let Some(web) = web {
        chat = chat.with_web(web);
    }
    let cli = Cli { chat: &chat, store: store.as_ref(), params: &params, actor, web: args.web };
    match &args.message {
        Some(message) => cli.one_turn(args.session, args.temporary, message, args.json),
        None => Interactive {
            cli,
            session: args.session,
            temporary: args.temporary,
            model_path: PathBuf::from(&args.model),
        }
        .run(),
    }
}

/// What every command of a chat needs.
struct Cli<'a> {
    chat: &'a Conversation,
    store: &'a dyn SessionStore,
    params: &'a GenerationParams,
    actor: Actor,
    /// Search the web for each message.
    web: bool,
}

impl Cli<'_> {
    /// A new session, titled by its first message.
    fn new_session(&self, temporary: bool) -> anyhow::Result<SessionId> {
        let new = NewSession { temporary, ..NewSession::default() };
        Ok(self.store.create_session_with(&self.actor, &new)?.id)
    }

    /// Runs one turn, printing the reply as it comes unless `quiet`.
    fn say(&self, session: SessionId, text: &str, quiet: bool) -> anyhow::Result<TurnOutcome> {
        let mut stdout = std::io::stdout();
        let turn = TurnOptions::default().with_web(self.web);
        let outcome = self.chat.turn_with(&self.actor, session, text, self.params, &turn, &mut |piece| {
            if !quiet {
                print!("{piece}");
                let _ = stdout.flush();
            }
            ControlFlow::Continue(())
        })?;
        if !quiet {
            println!();
            note_sources(&outcome);
            note_finish(&outcome);
        }
        Ok(outcome)
    }

    fn one_turn(
        &self,
        session: Option<SessionId>,
        temporary: bool,
        message: &str,
        json: bool,
    ) -> anyhow::Result<()> {
        let session = match session {
            Some(id) => id,
            None => self.new_session(temporary)?,
        };
        let outcome = self.say(session, message, json)?;
        // The reply is out; learning comes after it.
        let learned = self.chat.learn(&self.actor, &outcome)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&turn_json(&outcome, &learned))?);
        } else {
            note_learned(&learned);
        }
        Ok(())
    }
}

fn turn_json(outcome: &TurnOutcome, learned: &Learned) -> serde_json::Value {
    let usage = outcome.generation.usage;
    json!({
        "session_id": outcome.session_id,
        "reply": outcome.generation.text,
        "finish_reason": outcome.generation.finish_reason.as_str(),
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens(),
            "cached_tokens": usage.cached_tokens,
        },
        "memory": outcome.memory,
        "memories_injected": outcome.context.memories_used,
        "memories_learned": learned.changed,
        "memories_forgotten": learned.deleted,
        "memory_failures": learned.failures,
        "context": outcome.context,
        "sources": outcome.sources,
        "web": outcome.web,
    })
}

/// The sources under the reply, and what the web search could not use.
fn note_sources(outcome: &TurnOutcome) {
    if !outcome.sources.is_empty() {
        println!("Sources:");
        for source in &outcome.sources {
            println!("  [{}] {} <{}>", source.n, source.title, source.url);
        }
    }
    if let Some(report) = &outcome.web {
        if report.error.is_some() || !report.timed_out.is_empty() || !report.failed.is_empty() {
            eprintln!("[{}]", report.summary());
        }
        if let Some(note) = &report.queries_note {
            eprintln!("[searched with your words: {note}]");
        }
    }
}

fn note_finish(outcome: &TurnOutcome) {
    if outcome.generation.finish_reason == FinishReason::Length {
        eprintln!("[the reply reached --max-tokens and was cut]");
    }
    if !outcome.context.is_complete() || outcome.context.history_summarized > 0 {
        eprintln!("[{}]", outcome.context.summary());
    }
    match outcome.memory {
        MemoryMode::On => {}
        MemoryMode::Temporary => eprintln!("[temporary session: memory not used]"),
        MemoryMode::Off => eprintln!("[memory is off for this user]"),
    }
}

fn note_learned(learned: &Learned) {
    for memory in &learned.changed {
        eprintln!("[remembered: {}]", memory.content);
    }
    for id in &learned.deleted {
        eprintln!("[forgot memory {id}]");
    }
    for failure in &learned.failures {
        eprintln!("[memory extraction failed: {failure}]");
    }
}

const HELP: &str = "commands: /new  /temporary  /web  /list  /switch ID  /rename TITLE  /delete ID  \
                    /regenerate  /memories  /help  /quit";

/// The interactive loop: reads lines, runs turns, handles slash commands.
struct Interactive<'a> {
    cli: Cli<'a>,
    session: Option<SessionId>,
    /// The next new session is temporary.
    temporary: bool,
    model_path: PathBuf,
}

type Learning<'scope> =
    Option<std::thread::ScopedJoinHandle<'scope, Result<Learned, modelforge_memory::ChatError>>>;

impl Interactive<'_> {
    /// Reads lines until end of input or /quit. Learning from a turn runs on its own thread
    /// while the user reads the reply and types the next line; it is finished (and what it
    /// learned shown) before the next command or turn.
    fn run(mut self) -> anyhow::Result<()> {
        eprintln!("chatting with {} — {HELP}", self.model_path.display());
        let stdin = std::io::stdin();
        let chat = self.cli.chat;
        std::thread::scope(|scope| {
            let mut learning: Learning<'_> = None;
            let finish = |learning: &mut Learning<'_>| match learning.take().map(|handle| handle.join()) {
                None => {}
                Some(Ok(Ok(learned))) => note_learned(&learned),
                Some(Ok(Err(err))) => eprintln!("[learning from the turn failed: {err}]"),
                Some(Err(_)) => eprintln!("[learning from the turn panicked]"),
            };
            loop {
                eprint!("> ");
                let mut line = String::new();
                if stdin.lock().read_line(&mut line)? == 0 {
                    finish(&mut learning);
                    return Ok(());
                }
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                finish(&mut learning);
                let result = match line.strip_prefix('/') {
                    Some(command) => match self.command(command) {
                        Ok(ControlFlow::Break(())) => return Ok(()),
                        Ok(ControlFlow::Continue(answered)) => {
                            let actor = self.cli.actor;
                            learning =
                                answered.map(|outcome| scope.spawn(move || chat.learn(&actor, &outcome)));
                            Ok(())
                        }
                        Err(err) => Err(err),
                    },
                    None => self.say(line).map(|outcome| {
                        let actor = self.cli.actor;
                        learning = Some(scope.spawn(move || chat.learn(&actor, &outcome)));
                    }),
                };
                // A mistake in one command does not end the conversation.
                if let Err(err) = result {
                    eprintln!(
                        "error: {}",
                        err.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
                    );
                }
            }
        })
    }

    /// Runs one turn in the current session (starting one if needed) and returns it; the
    /// caller learns from it.
    fn say(&mut self, text: &str) -> anyhow::Result<TurnOutcome> {
        let session = match self.session {
            Some(id) => id,
            None => {
                let id = self.cli.new_session(self.temporary)?;
                let kind = if self.temporary { "temporary session" } else { "session" };
                eprintln!("[new {kind} {id}]");
                self.session = Some(id);
                id
            }
        };
        self.cli.say(session, text, false)
    }

    /// Runs a slash command; a command that answers (`/regenerate`) returns its turn.
    fn command(&mut self, command: &str) -> anyhow::Result<ControlFlow<(), Option<TurnOutcome>>> {
        let (name, arg) = command.split_once(' ').map_or((command, ""), |(n, a)| (n, a.trim()));
        let (store, actor) = (self.cli.store, &self.cli.actor);
        match name {
            "quit" | "exit" => return Ok(ControlFlow::Break(())),
            "new" => {
                self.session = None;
                self.temporary = false;
                eprintln!("[the next message starts a new session]");
            }
            "temporary" => match self.session {
                Some(id) => {
                    let now = !store.get_session(actor, id)?.temporary;
                    store.set_session_temporary(actor, id, now)?;
                    eprintln!(
                        "[this session is {}]",
                        if now { "temporary: memory off" } else { "no longer temporary" }
                    );
                }
                None => {
                    self.temporary = !self.temporary;
                    eprintln!("[the next session is {}temporary]", if self.temporary { "" } else { "not " });
                }
            },
            "web" => {
                if !self.cli.chat.has_web() {
                    anyhow::bail!(
                        "web search needs a search service: restart with --search-url URL or MODELFORGE_SEARCH_URL"
                    );
                }
                self.cli.web = !self.cli.web;
                eprintln!(
                    "[web search is {}]",
                    if self.cli.web { "on: messages are answered from web sources" } else { "off" }
                );
            }
            "list" => {
                for s in store.list_sessions(actor, &Default::default())?.sessions {
                    let mark = if Some(s.id) == self.session { "*" } else { " " };
                    println!("{mark} {}  {:>4} msgs  {}", s.id, s.message_count, s.title);
                }
            }
            "switch" => {
                let session = store.get_session(actor, arg.parse()?)?;
                for m in store.list_messages(actor, session.id)?.iter().rev().take(4).rev() {
                    println!("{}: {}", m.role, m.content);
                }
                eprintln!("[switched to {}: {}]", session.id, session.title);
                self.session = Some(session.id);
            }
            "rename" => {
                let id =
                    self.session.ok_or_else(|| anyhow::anyhow!("no session yet: send a message first"))?;
                let session = store.rename_session(actor, id, arg)?;
                eprintln!("[renamed to {}]", session.title);
            }
            "delete" => {
                let id: SessionId = arg.parse()?;
                store.delete_session(actor, id)?;
                self.cli.chat.forget_state(id);
                if self.session == Some(id) {
                    self.session = None;
                }
                eprintln!("[deleted {id}]");
            }
            "regenerate" => {
                let id =
                    self.session.ok_or_else(|| anyhow::anyhow!("no session yet: send a message first"))?;
                let mut stdout = std::io::stdout();
                let outcome = self.cli.chat.regenerate(actor, id, self.cli.params, &mut |piece| {
                    print!("{piece}");
                    let _ = stdout.flush();
                    ControlFlow::Continue(())
                })?;
                println!();
                note_finish(&outcome);
                return Ok(ControlFlow::Continue(Some(outcome)));
            }
            "memories" => {
                for m in store.list_memories(actor)? {
                    println!("{}  {:<10} {}", m.id, m.kind.as_str(), m.content);
                }
            }
            "help" => eprintln!("{HELP}"),
            other => anyhow::bail!("unknown command /{other}; {HELP}"),
        }
        Ok(ControlFlow::Continue(None))
    }
}
