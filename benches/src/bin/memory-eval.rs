//! Evaluates memory on `benches/data/memory_eval.json` and prints the figures.
//!
//! For every conversation a user is made in a scratch SQLite store and given the data set's
//! unrelated memories; then each session is replayed through [`Conversation`], the chat turn
//! the CLI and the server run: its questions are asked first, each in a new session, then its
//! user messages are sent as turns and learned from. Reported: extraction precision and recall
//! per extractor, forget requests honoured, retrieval recall@5 of the current answer, stale
//! answers found, the share of questions whose injected memories (what the turn put into a
//! 2048-token prompt) hold the answer, and the share of stale or forgotten values kept out of
//! the prompt. Last, search time over 100,000 memories of one user.
//!
//! Prompts are assembled and counted with the real model's tokenizer (SmolLM2 from the test
//! models unless `--model` says otherwise), but the reply itself is skipped: memory figures do
//! not depend on it, and generating 1,000 replies would take an hour on a small CPU.
//!
//! ```text
//! cargo run --release -p modelforge-benches --bin memory-eval -- [--llm MODEL.gguf] [--json]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use modelforge_core::{
    Backend, Embedder, FinishReason, GenerationParams, LoadOptions, LoadedModel, Memory, MemoryDetails,
    MemoryExtractor, MemoryId, MemoryKind, NewMemory, NewUser, SessionStore, UserId, UserRole,
};
use modelforge_engine::{BertEmbedder, LlamaCppBackend};
use modelforge_memory::{
    ChatOptions, Conversation, LlmExtractor, MemoryBank, MemoryIndex, RuleExtractor, SearchOptions,
};
use modelforge_store::{SqliteStore, StoreOptions};
use modelforge_testkit::prompt_only::PromptOnly;
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "Memory evaluation: extraction, retrieval and injection figures")]
struct Args {
    /// The data set.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/memory_eval.json"))]
    data: PathBuf,
    /// The sentence embedder (a directory with config.json, tokenizer.json, model.safetensors);
    /// default: the test models' all-MiniLM-L6-v2. `none` searches by keywords only.
    #[arg(long)]
    embedder: Option<String>,
    /// The GGUF model whose tokenizer and chat template build the prompts; default: the test
    /// models' SmolLM2.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Also evaluate the LLM extractor with this GGUF chat model (e.g. the test models'
    /// SmolLM2); without it only the rule extractor is evaluated.
    #[arg(long)]
    llm: Option<PathBuf>,
    /// With --llm: evaluate the model on every K-th conversation only (it takes seconds per
    /// message on a small CPU).
    #[arg(long, default_value_t = 1)]
    llm_every: usize,
    /// With --llm: also run rules and model together.
    #[arg(long)]
    combined: bool,
    /// Memories in the search-speed test.
    #[arg(long, default_value_t = 100_000)]
    search_memories: usize,
    /// Run the rule extractor with statements kept in the user's own words
    /// (`RuleExtractor::with_own_words`).
    #[arg(long)]
    own_words: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Print every miss to stderr: facts missed or wrongly extracted, forget requests not
    /// honoured, answers not searched or not injected, stale or forgotten values injected.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Deserialize)]
struct DataSet {
    conversations: Vec<Dialogue>,
    distractors: Vec<String>,
}

/// One person's conversations, session by session.
#[derive(Deserialize)]
struct Dialogue {
    id: String,
    sessions: Vec<SessionData>,
}

#[derive(Deserialize)]
struct SessionData {
    #[serde(default)]
    questions: Vec<Question>,
    #[serde(default)]
    turns: Vec<TurnData>,
}

#[derive(Deserialize)]
struct Question {
    question: String,
    answer: Option<String>,
    stale: Option<String>,
    forgotten: Option<String>,
}

#[derive(Deserialize)]
struct TurnData {
    user: String,
    facts: Vec<GoldFact>,
}

#[derive(Deserialize)]
struct GoldFact {
    topic: String,
    value: String,
    replaces: Option<String>,
}

/// The topics the rule extractor is meant to cover (everything but "other").
const RULE_TOPICS: [&str; 7] = ["name", "home", "work", "family", "likes", "dislikes", "remember"];

#[derive(Default, Serialize)]
struct Figures {
    extracted: usize,
    extracted_correct: usize,
    gold: usize,
    gold_found: usize,
    forgets: usize,
    forgets_done: usize,
    questions: usize,
    recall_at_5: usize,
    injected_with_answer: usize,
    stale_in_top5: usize,
    stale_questions: usize,
    stale_or_forgotten_kept_out: usize,
    forgotten_questions: usize,
    forgotten_absent: usize,
    extraction_failures: usize,
    by_topic: BTreeMap<String, (usize, usize)>,
}

impl Figures {
    fn ratio(a: usize, b: usize) -> f64 {
        if b == 0 { f64::NAN } else { a as f64 / b as f64 }
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "extraction_precision": Self::ratio(self.extracted_correct, self.extracted),
            "extraction_recall": Self::ratio(self.gold_found, self.gold),
            "extracted": self.extracted,
            "gold_facts": self.gold,
            "forget_requests_honoured": Self::ratio(self.forgets_done, self.forgets),
            "retrieval_recall_at_5": Self::ratio(self.recall_at_5, self.questions),
            "injected_answer_share": Self::ratio(self.injected_with_answer, self.questions),
            "questions": self.questions,
            "stale_answer_in_top5": Self::ratio(self.stale_in_top5, self.stale_questions),
            "forgotten_absent_from_top5": Self::ratio(self.forgotten_absent, self.forgotten_questions),
            "stale_cleared_from_prompt": Self::ratio(
                self.stale_or_forgotten_kept_out,
                self.stale_questions + self.forgotten_questions
            ),
            "extraction_failures": self.extraction_failures,
            "recall_by_topic": self.by_topic.iter().map(|(t, (found, all))| (t.clone(), serde_json::json!(format!("{found}/{all}")))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// The lines of `text` that hold `value`, to show where a stale or forgotten value came from.
fn lines_with<'t>(text: &'t str, value: &str) -> Vec<&'t str> {
    text.lines().filter(|line| contains(line, value)).collect()
}

struct Run<'a> {
    name: &'static str,
    /// Evaluate every this many conversations.
    every: usize,
    extractors: Vec<Arc<dyn MemoryExtractor>>,
    /// Topics whose facts count toward recall.
    topics: &'a [&'a str],
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data: DataSet = serde_json::from_slice(
        &std::fs::read(&args.data).with_context(|| format!("reading {}", args.data.display()))?,
    )?;
    let embedder: Option<Arc<dyn Embedder>> = match args.embedder.as_deref() {
        Some("none") => None,
        Some(dir) => Some(Arc::new(BertEmbedder::load(dir)?)),
        None => Some(Arc::new(BertEmbedder::load(modelforge_testkit::minilm_dir())?)),
    };
    let options = LoadOptions { context_length: Some(2048), ..LoadOptions::default() };
    let model_path = args.model.clone().unwrap_or_else(modelforge_testkit::smollm2_gguf);
    // Prompts are built and counted exactly as in a real turn; the reply is a fixed word, since
    // generating 1,000 replies would take an hour and change no memory figure.
    let model: Arc<dyn LoadedModel> = Arc::new(PromptOnly::new(
        LlamaCppBackend::new().load(&model_path, &options)?,
        "OK.",
        FinishReason::Stop,
    ));
    let llm = match &args.llm {
        Some(path) => Some(LlamaCppBackend::new().load(path, &options)?),
        None => None,
    };

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn SessionStore> =
        Arc::new(SqliteStore::open(&dir.path().join("eval.db"), StoreOptions::with_secret(vec![7; 32]))?);
    store.create_user(&new_user("admin"))?;
    // The distractors are embedded once and stored with every user.
    let distractor_vectors = match &embedder {
        Some(e) => {
            let texts: Vec<&str> = data.distractors.iter().map(String::as_str).collect();
            let mut all = Vec::new();
            for chunk in texts.chunks(32) {
                all.extend(e.embed(chunk)?);
            }
            all.into_iter().map(Some).collect()
        }
        None => vec![None; data.distractors.len()],
    };

    let rules: Arc<dyn MemoryExtractor> = Arc::new(RuleExtractor::new().with_own_words(args.own_words));
    let llm_extractor: Option<Arc<dyn MemoryExtractor>> =
        llm.as_ref().map(|m| Arc::new(LlmExtractor::new(Arc::clone(m))) as Arc<dyn MemoryExtractor>);
    let mut runs =
        vec![Run { name: "rules", every: 1, extractors: vec![Arc::clone(&rules)], topics: &RULE_TOPICS }];
    const ALL_TOPICS: [&str; 8] =
        ["name", "home", "work", "family", "likes", "dislikes", "remember", "other"];
    if let Some(extractor) = &llm_extractor {
        let every = args.llm_every.max(1);
        runs.push(Run { name: "llm", every, extractors: vec![Arc::clone(extractor)], topics: &ALL_TOPICS });
        if args.combined {
            runs.push(Run {
                name: "rules+llm",
                every,
                extractors: vec![Arc::clone(&rules), Arc::clone(extractor)],
                topics: &ALL_TOPICS,
            });
        }
    }

    let mut report = serde_json::Map::new();
    for run in &runs {
        let started = Instant::now();
        let bank = Arc::new(MemoryBank::new(store.clone(), embedder.clone()));
        let chat = Conversation::new(Arc::clone(&model), store.clone(), store.clone(), Arc::clone(&bank))
            .with_options(ChatOptions::default().with_summary(false))
            .with_extractors(run.extractors.clone());
        let params = GenerationParams { max_tokens: 256, ..GenerationParams::greedy() };
        let quiet = &mut |_: &str| std::ops::ControlFlow::Continue(());
        let mut figures = Figures::default();
        let mut conversations = 0;
        for conversation in data.conversations.iter().step_by(run.every) {
            conversations += 1;
            // A username takes no `+`: "rules+llm" becomes "rules-llm".
            let username = format!("{}-{}", run.name.replace('+', "-"), conversation.id);
            let user = store.create_user(&new_user(&username))?;
            let actor = user.actor();
            for (text, vector) in data.distractors.iter().zip(&distractor_vectors) {
                let memory =
                    NewMemory { kind: MemoryKind::Fact, content: text.clone(), source_session_id: None };
                let details = MemoryDetails { confidence: 1.0, embedding: vector.clone() };
                store.add_memory_record(&actor, &memory, &details)?;
            }
            for session_data in &conversation.sessions {
                let session = store.create_session(&actor, &conversation.id)?;
                for q in &session_data.questions {
                    let hits = bank.search(&actor, &q.question, &SearchOptions::default())?;
                    let found: Vec<Memory> = hits.into_iter().map(|h| h.memory).collect();
                    figures.questions += 1;
                    let asked = store.create_session(&actor, "")?;
                    let outcome = chat.turn(&actor, asked.id, &q.question, &params, quiet)?;
                    let injected_text: String =
                        outcome.memories.iter().map(|m| format!("{}\n", m.content)).collect();
                    match (&q.answer, &q.forgotten) {
                        (Some(answer), _) => {
                            let hit = found.iter().any(|m| contains(&m.content, answer));
                            figures.recall_at_5 += usize::from(hit);
                            let with_answer = contains(&injected_text, answer);
                            figures.injected_with_answer += usize::from(with_answer);
                            if !with_answer && args.verbose {
                                eprintln!(
                                    "[{}] {} not injected: {:?} (want {answer}); injected {:?}",
                                    run.name, conversation.id, q.question, injected_text
                                );
                            }
                            if !hit && args.verbose {
                                let any =
                                    SearchOptions { min_score: -1.0, top_k: 200, ..SearchOptions::default() };
                                let ranked = bank.search(&actor, &q.question, &any)?;
                                let rank = ranked.iter().position(|h| contains(&h.memory.content, answer));
                                let best = ranked.first().map(|h| (h.score, h.similarity, h.keywords));
                                let wanted = rank.map(|r| {
                                    (
                                        r,
                                        ranked[r].score,
                                        ranked[r].similarity,
                                        ranked[r].keywords,
                                        ranked[r].memory.content.clone(),
                                    )
                                });
                                eprintln!(
                                    "[{}] {} miss: {:?} (want {answer}); best {best:?}; wanted at {wanted:?}",
                                    run.name, conversation.id, q.question
                                );
                            }
                        }
                        (None, Some(forgotten)) => {
                            figures.forgotten_questions += 1;
                            let absent = !found.iter().any(|m| contains(&m.content, forgotten));
                            figures.forgotten_absent += usize::from(absent);
                            // Nothing to find is the right answer here.
                            figures.recall_at_5 += usize::from(absent);
                            let kept_out = !contains(&injected_text, forgotten);
                            figures.injected_with_answer += usize::from(kept_out);
                            if !kept_out && args.verbose {
                                eprintln!(
                                    "[{}] {} forgotten but injected: {:?} ({forgotten}) in {:?}",
                                    run.name,
                                    conversation.id,
                                    q.question,
                                    lines_with(&injected_text, forgotten)
                                );
                            }
                            figures.stale_or_forgotten_kept_out += usize::from(kept_out);
                        }
                        (None, None) => figures.questions -= 1,
                    }
                    if let Some(stale) = &q.stale {
                        figures.stale_questions += 1;
                        figures.stale_in_top5 +=
                            usize::from(found.iter().any(|m| contains(&m.content, stale)));
                        let stale_kept_out = !contains(&injected_text, stale);
                        figures.stale_or_forgotten_kept_out += usize::from(stale_kept_out);
                        if !stale_kept_out && args.verbose {
                            eprintln!(
                                "[{}] {} stale but injected: {:?} ({stale}) in {:?}",
                                run.name,
                                conversation.id,
                                q.question,
                                lines_with(&injected_text, stale)
                            );
                        }
                    }
                }
                for turn in &session_data.turns {
                    let outcome = chat.turn(&actor, session.id, &turn.user, &params, quiet)?;
                    let learned = chat.learn(&actor, &outcome)?;
                    figures.extraction_failures += learned.failures.len();
                    let gold: Vec<&GoldFact> = turn.facts.iter().filter(|f| f.topic != "forget").collect();
                    for memory in &learned.changed {
                        figures.extracted += 1;
                        let correct = gold.iter().any(|g| {
                            contains(&memory.content, &g.value)
                                || g.replaces.as_deref().is_some_and(|r| contains(&memory.content, r))
                        });
                        figures.extracted_correct += usize::from(correct);
                        if !correct && args.verbose {
                            eprintln!(
                                "[{}] {} wrong: {:?} from {:?}",
                                run.name, conversation.id, memory.content, turn.user
                            );
                        }
                    }
                    for g in gold.iter().filter(|g| run.topics.contains(&g.topic.as_str())) {
                        figures.gold += 1;
                        let found = learned.changed.iter().any(|m| contains(&m.content, &g.value));
                        figures.gold_found += usize::from(found);
                        let entry = figures.by_topic.entry(g.topic.clone()).or_default();
                        entry.0 += usize::from(found);
                        entry.1 += 1;
                        if !found && args.verbose {
                            eprintln!(
                                "[{}] {} missed {} {:?} in {:?}",
                                run.name, conversation.id, g.topic, g.value, turn.user
                            );
                        }
                    }
                    for forget in turn.facts.iter().filter(|f| f.topic == "forget") {
                        figures.forgets += 1;
                        let left = store
                            .list_memories(&actor)?
                            .into_iter()
                            .any(|m| contains(&m.content, &forget.value));
                        figures.forgets_done += usize::from(!left);
                        if left && args.verbose {
                            eprintln!("[{}] {} not forgotten: {:?}", run.name, conversation.id, forget.value);
                        }
                    }
                }
            }
        }
        let mut summary = figures.summary();
        summary["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
        summary["conversations"] = serde_json::json!(conversations);
        report.insert(run.name.to_owned(), summary);
    }
    report.insert(
        "search".into(),
        search_speed(args.search_memories, embedder.as_ref().map_or(384, |e| e.dimensions())),
    );
    report.insert(
        "data".into(),
        serde_json::json!({
            "conversations": data.conversations.len(),
            "distractors_per_user": data.distractors.len(),
            "embedder": embedder.is_some(),
        }),
    );

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (name, figures) in &report {
            println!("{name}:");
            if let Some(map) = figures.as_object() {
                for (key, value) in map {
                    match value.as_f64() {
                        Some(x) if value.is_f64() => println!("  {key:<28} {x:.3}"),
                        _ => println!("  {key:<28} {value}"),
                    }
                }
            }
        }
    }
    Ok(())
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        password: "correct horse battery staple".into(),
        email: None,
        role: UserRole::User,
    }
}

/// Median and worst search time over `n` memories with random unit vectors of `dims`
/// dimensions and short texts.
fn search_speed(n: usize, dims: usize) -> serde_json::Value {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut unit = |dims: usize| {
        let v: Vec<f32> = (0..dims).map(|_| random()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let user = UserId::new();
    let topics = ["travel", "music", "cooking", "garden", "books", "cycling", "chess", "photos"];
    let build = Instant::now();
    let mut index = MemoryIndex::new(dims);
    for i in 0..n {
        let memory = Memory {
            id: MemoryId::new(),
            user_id: user,
            kind: MemoryKind::Fact,
            content: format!(
                "The user noted item {i} about {} number {}.",
                topics[i % topics.len()],
                i % 997
            ),
            source_session_id: None,
            created_at: chrono::Utc::now(),
        };
        index.insert(memory, Some(&unit(dims)));
    }
    let build_s = build.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for q in 0..50 {
        let query = unit(dims);
        let text = format!("what did I say about {} {}", topics[q % topics.len()], q * 7);
        let started = Instant::now();
        let hits = index.search(&text, Some(&query), &SearchOptions::default());
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(hits.len() <= 5);
    }
    times.sort_by(f64::total_cmp);
    serde_json::json!({
        "memories": n,
        "dimensions": dims,
        "index_build_seconds": build_s,
        "search_ms_median": times[times.len() / 2],
        "search_ms_p95": times[times.len() * 95 / 100],
        "search_ms_max": times[times.len() - 1],
    })
}
