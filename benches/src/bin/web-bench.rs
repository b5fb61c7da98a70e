//! Time a web search adds to a chat turn, with 5 results and pages served from loopback
//! (`modelforge_testkit::web_server`), split into search, fetch, extract and rank. Nothing is
//! cached between runs. The queries are the user's words (a model writing them costs one short
//! generation, measured by the generation benchmarks).
//!
//! ```text
//! cargo run --release -p modelforge-benches --bin web-bench -- [--runs 20] [--embedder DIR|none]
//! ```
//!
//! With an embedder, it also shows where ranking's time goes: the passages of one search
//! embedded as the first version did (the question and the best passages whole, in one batch
//! padded to the longest) against the question alone plus the passages' first
//! [`EMBED_TOKENS`] tokens sorted by length, as `rank` does now.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use modelforge_core::Embedder;
use modelforge_engine::BertEmbedder;
use modelforge_memory::web::{EMBED_AT_MOST, EMBED_TOKENS, FetchOptions, PageFetcher, extract, rank, split};
use modelforge_memory::{SearxngProvider, WebOptions, WebSearch, WebTimings};
use modelforge_testkit::echo_model::EchoModel;
use modelforge_testkit::web_server::{self as web, WebServer};

#[derive(Parser)]
#[command(about = "Time added to a turn by web search over loopback, by step")]
struct Args {
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The sentence embedder for ranking (a directory, or `none`) [default: the test models'
    /// all-MiniLM-L6-v2].
    #[arg(long)]
    embedder: Option<String>,
}

const QUESTION: &str = "What causes tides, and why are there two a day?";

/// The five pages every run fetches: an English and a Chinese article, a page over the size
/// cap, a short page, and an article in windows-1252. No two passages are the same.
const RESULTS: [&str; 5] = [web::TIDES, web::CHINESE, web::LARGE, web::INJECTION, web::WINDOWS_1252];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let embedder: Option<Arc<dyn Embedder>> = match args.embedder.as_deref() {
        Some("none") => None,
        Some(dir) => Some(Arc::new(BertEmbedder::load(PathBuf::from(dir))?)),
        None => Some(Arc::new(BertEmbedder::load(modelforge_testkit::minilm_dir())?)),
    };
    let server = WebServer::start();
    server.set_results(&RESULTS);
    let mut options = WebOptions::default()
        .with_allow_private(true)
        .with_model_queries(false)
        .with_deadline(Duration::from_secs(10));
    options.cache_for = Duration::ZERO;
    let provider = Arc::new(SearxngProvider::new(&server.url())?);
    let search = WebSearch::new(provider, embedder.clone(), options);
    let model = EchoModel::new();
    let mut runs: Vec<WebTimings> = Vec::new();
    for i in 0..=args.runs {
        let found = search.research(&model, &[], QUESTION);
        anyhow::ensure!(found.report.error.is_none(), "search failed: {:?}", found.report.error);
        anyhow::ensure!(found.sources.len() >= 3, "too few sources: {:?}", found.report);
        if i > 0 {
            runs.push(found.report.timings); // the first run warms connections and the embedder
        }
    }
    let median = |f: fn(&WebTimings) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (search_ms, fetch_ms, extract_ms, rank_ms) =
        (median(|t| t.search_ms), median(|t| t.fetch_ms), median(|t| t.extract_ms), median(|t| t.rank_ms));
    let total = median(|t| t.search_ms + t.fetch_ms + t.rank_ms);
    println!("web search, 5 results, loopback pages, {} runs (medians, ms)", runs.len());
    println!("ranking: {}", if embedder.is_some() { "keywords + all-MiniLM-L6-v2" } else { "keywords only" });
    println!("  search            {search_ms:8.1}");
    println!("  fetch (parallel)  {fetch_ms:8.1}   of which extract {extract_ms:.1}");
    println!("  split + rank      {rank_ms:8.1}");
    println!("  total             {total:8.1}   goal: under 300");
    let (min, max) = runs
        .iter()
        .map(|t| t.search_ms + t.fetch_ms + t.rank_ms)
        .fold((f64::MAX, 0.0), |(lo, hi), t| (f64::min(lo, t), f64::max(hi, t)));
    println!("  total, fastest and slowest run: {min:.1} / {max:.1}");
    if let Some(embedder) = &embedder {
        ranking_breakdown(&server, embedder.as_ref(), args.runs)?;
    }
    Ok(())
}

/// Medians of embedding one search's candidates the first way and the current way.
fn ranking_breakdown(server: &WebServer, embedder: &dyn Embedder, runs: usize) -> anyhow::Result<()> {
    let mut options = FetchOptions::default();
    options.allow_private = true;
    let fetcher = PageFetcher::new(options);
    let mut passages = Vec::new();
    for (i, name) in RESULTS.iter().enumerate() {
        let page = fetcher.fetch(&server.page_url(name), Instant::now() + Duration::from_secs(10))?;
        passages.extend(split(i, &extract(&page.html).paragraphs));
    }
    let all = passages.len();
    rank(QUESTION, &mut passages, None);
    let best: Vec<&str> = passages.iter().take(EMBED_AT_MOST).map(|p| p.text.as_str()).collect();
    let tokens: Vec<usize> = best.iter().map(|t| embedder.count_tokens(t).unwrap_or(0)).collect();
    // Medians of wall time and of the process's CPU time (all threads), which a busy machine
    // changes less.
    let time = |f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<(f64, f64)> {
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..=runs.max(1) {
            let (started, cpu) = (Instant::now(), cpu_ms());
            f()?;
            walls.push(started.elapsed().as_secs_f64() * 1000.0);
            cpus.push(cpu_ms() - cpu);
        }
        let median = |mut v: Vec<f64>| {
            v.remove(0);
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Ok((median(walls), median(cpus)))
    };
    let first_way = time(&|| {
        let mut texts = vec![QUESTION];
        texts.extend(&best);
        embedder.embed(&texts)?;
        Ok(())
    })?;
    let question_alone = time(&|| {
        embedder.embed(&[QUESTION])?;
        Ok(())
    })?;
    let current = time(&|| {
        let mut ranked = passages.clone();
        rank(QUESTION, &mut ranked, Some(embedder));
        Ok(())
    })?;
    let keywords = time(&|| {
        let mut ranked = passages.clone();
        rank(QUESTION, &mut ranked, None);
        Ok(())
    })?;
    println!("ranking {all} passages, the best {} by keywords embedded (medians, ms: wall, CPU)", best.len());
    println!("  their tokens whole (the model reads at most 512): {tokens:?}");
    let line = |what: &str, (wall, cpu): (f64, f64)| println!("  {what:<56} {wall:8.1} {cpu:8.1}");
    line("first way: question + passages whole, one batch", first_way);
    line(&format!("now: keywords, question alone, first {EMBED_TOKENS} tokens"), current);
    line("  of which the question alone", question_alone);
    line("  of which keywords", keywords);
    println!(
        "  cores: {}",
        std::thread::available_parallelism().map(|n| n.get().to_string()).unwrap_or_else(|_| "?".into())
    );
    Ok(())
}

/// CPU time used by this process so far, all threads, in ms (from `/proc/self/stat`, in clock
/// ticks of 10 ms; 0 where there is no `/proc`).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    // After the command: state is field 3, utime 14 and stime 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) * 10.0
}
