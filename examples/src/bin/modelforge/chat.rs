//! `modelforge chat`: one scripted turn, or an interactive loop with session commands.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use clap::Args;
use std::sync::Arc;

use modelforge_core::{
    Actor, FinishReason, GenerationParams, LoadOptions, MemoryExtractor, SessionId, SessionStore,
};
use modelforge_examples::setup;
use modelforge_examples::turn::{self, DEFAULT_SYSTEM_PROMPT, MemoryMode, Turn, TurnOutcome};
use modelforge_memory::{ContextBudget, Learned, LlmExtractor, MemoryBank, RuleExtractor, SearchOptions};
use serde_json::json;

/// Arguments of `modelforge chat`.
#[derive(Args)]
pub struct ChatArgs {
    /// The user to chat as (password from MODELFORGE_PASSWORD, else a prompt).
    #[arg(long)]
    user: String,
    /// A GGUF file, or the name of a model under DATA_DIR/models.
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
    #[arg(long)]
    threads: Option<u32>,
    /// How llama.cpp stores the KV cache.
    #[arg(long, value_enum, default_value = "f16")]
    kv_cache: setup::KvCacheArg,
    /// Start a temporary session: memories are neither used nor learned in it.
    #[arg(long, conflicts_with = "session")]
    temporary: bool,
    /// Also let the model extract memories (grammar-constrained JSON), besides the rules.
    #[arg(long)]
    llm_memory: bool,
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
}

/// Runs `modelforge chat`.
pub fn run(data_dir: &Path, args: ChatArgs) -> anyhow::Result<()> {
    let store = setup::open_store(data_dir)?;
    // Log in before the slow model load, so a wrong password fails fast.
    let actor = crate::login(store.as_ref(), &args.user)?.actor();
    if let Some(id) = args.session {
        store.get_session(&actor, id)?;
    }
    let options =
        LoadOptions { context_length: args.ctx_size, threads: args.threads, ..LoadOptions::default() };
    let model = setup::load_model(data_dir, &args.model, &options, args.kv_cache)?;
    let params = GenerationParams {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
        ..GenerationParams::default()
    };
    let embedder = setup::open_embedder(data_dir, args.embedder.as_deref())?;
    let bank = MemoryBank::new(Arc::clone(&store), embedder);
    let rules = RuleExtractor::new();
    let llm = args.llm_memory.then(|| LlmExtractor::new(Arc::clone(&model)));
    let mut extractors: Vec<&dyn MemoryExtractor> = vec![&rules];
    extractors.extend(llm.as_ref().map(|e| e as &dyn MemoryExtractor));
    let state_dir = data_dir.join("state");
    let turn = Turn {
        store: store.as_ref(),
        model: model.as_ref(),
        memory: &bank,
        extractors: &extractors,
        retrieval: SearchOptions { top_k: args.memories, ..SearchOptions::default() },
        memory_share: args.memory_share,
        summarize: !args.no_summary,
        system_prompt: &args.system,
        params: &params,
        state_dir: Some(&state_dir),
    };
    match &args.message {
        Some(message) => one_turn(&turn, &actor, args.session, args.temporary, message, args.json),
        None => Interactive {
            turn: &turn,
            actor,
            session: args.session,
            temporary: args.temporary,
            model_path: PathBuf::from(&args.model),
            state_dir: &state_dir,
        }
        .run(),
    }
}

fn one_turn(
    turn: &Turn<'_>,
    actor: &Actor,
    session: Option<SessionId>,
    temporary: bool,
    message: &str,
    json: bool,
) -> anyhow::Result<()> {
    let session = match session {
        Some(id) => id,
        None => turn.new_session(actor, message, temporary)?.id,
    };
    let mut stdout = std::io::stdout();
    let outcome = turn.run(actor, session, message, &mut |piece| {
        if !json {
            print!("{piece}");
            let _ = stdout.flush();
        }
        ControlFlow::Continue(())
    })?;
    if !json {
        println!();
        note_finish(&outcome);
    }
    // The reply is out; learning comes after it.
    let learned = turn.learn(actor, &outcome)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&turn_json(&outcome, &learned))?);
    } else {
        note_learned(&learned);
    }
    Ok(())
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
    })
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

const HELP: &str =
    "commands: /new  /temporary  /list  /switch ID  /rename TITLE  /delete ID  /memories  /help  /quit";

/// The interactive loop: reads lines, runs turns, handles slash commands.
struct Interactive<'a> {
    turn: &'a Turn<'a>,
    actor: Actor,
    session: Option<SessionId>,
    /// The next new session is temporary.
    temporary: bool,
    model_path: PathBuf,
    state_dir: &'a Path,
}

impl Interactive<'_> {
    /// Reads lines until end of input or /quit. Learning from a turn runs on its own thread
    /// while the user reads the reply and types the next line; it is finished (and what it
    /// learned shown) before the next command or turn.
    fn run(mut self) -> anyhow::Result<()> {
        eprintln!("chatting with {} — {HELP}", self.model_path.display());
        let stdin = std::io::stdin();
        let turn = self.turn;
        std::thread::scope(|scope| {
            let mut learning: Option<std::thread::ScopedJoinHandle<'_, anyhow::Result<Learned>>> = None;
            let finish =
                |learning: &mut Option<std::thread::ScopedJoinHandle<'_, anyhow::Result<Learned>>>| {
                    match learning.take().map(|handle| handle.join()) {
                        None => {}
                        Some(Ok(Ok(learned))) => note_learned(&learned),
                        Some(Ok(Err(err))) => eprintln!("[learning from the turn failed: {err}]"),
                        Some(Err(_)) => eprintln!("[learning from the turn panicked]"),
                    }
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
                        other => other.map(|_| ()),
                    },
                    None => self.say(line).map(|outcome| {
                        let actor = self.actor;
                        learning = Some(scope.spawn(move || turn.learn(&actor, &outcome)));
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

    fn store(&self) -> &dyn SessionStore {
        self.turn.store
    }

    /// Runs one turn and returns it; the caller learns from it.
    fn say(&mut self, text: &str) -> anyhow::Result<TurnOutcome> {
        let session = match self.session {
            Some(id) => id,
            None => {
                let session = self.turn.new_session(&self.actor, text, self.temporary)?;
                let kind = if session.temporary { "temporary session" } else { "session" };
                eprintln!("[new {kind} {}]", session.id);
                self.session = Some(session.id);
                session.id
            }
        };
        let mut stdout = std::io::stdout();
        let outcome = self.turn.run(&self.actor, session, text, &mut |piece| {
            print!("{piece}");
            let _ = stdout.flush();
            ControlFlow::Continue(())
        })?;
        println!();
        note_finish(&outcome);
        Ok(outcome)
    }

    fn command(&mut self, command: &str) -> anyhow::Result<ControlFlow<()>> {
        let (name, arg) = command.split_once(' ').map_or((command, ""), |(n, a)| (n, a.trim()));
        let store = self.store();
        match name {
            "quit" | "exit" => return Ok(ControlFlow::Break(())),
            "new" => {
                self.session = None;
                self.temporary = false;
                eprintln!("[the next message starts a new session]");
            }
            "temporary" => match self.session {
                Some(id) => {
                    let now = !store.get_session(&self.actor, id)?.temporary;
                    store.set_session_temporary(&self.actor, id, now)?;
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
            "list" => {
                for s in store.list_sessions(&self.actor, &Default::default())?.sessions {
                    let mark = if Some(s.id) == self.session { "*" } else { " " };
                    println!("{mark} {}  {:>4} msgs  {}", s.id, s.message_count, s.title);
                }
            }
            "switch" => {
                let session = store.get_session(&self.actor, arg.parse()?)?;
                for m in store.list_messages(&self.actor, session.id)?.iter().rev().take(4).rev() {
                    println!("{}: {}", m.role, m.content);
                }
                eprintln!("[switched to {}: {}]", session.id, session.title);
                self.session = Some(session.id);
            }
            "rename" => {
                let id =
                    self.session.ok_or_else(|| anyhow::anyhow!("no session yet: send a message first"))?;
                let session = store.rename_session(&self.actor, id, arg)?;
                eprintln!("[renamed to {}]", session.title);
            }
            "delete" => {
                let id: SessionId = arg.parse()?;
                store.delete_session(&self.actor, id)?;
                turn::remove_state(self.state_dir, id);
                if self.session == Some(id) {
                    self.session = None;
                }
                eprintln!("[deleted {id}]");
            }
            "memories" => {
                for m in store.list_memories(&self.actor)? {
                    println!("{}  {:<10} {}", m.id, m.kind.as_str(), m.content);
                }
            }
            "help" => eprintln!("{HELP}"),
            other => anyhow::bail!("unknown command /{other}; {HELP}"),
        }
        Ok(ControlFlow::Continue(()))
    }
}
