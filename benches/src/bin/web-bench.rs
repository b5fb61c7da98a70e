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
//! embedded as the first version did (the question and the 8 best passages whole, in one batch
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

/// The five pages every run fetches: two articles, a page over the size cap, and two more.
const RESULTS: [&str; 5] = [web::TIDES, web::CHINESE, web::LARGE, web::INJECTION, "tides?copy=2"];

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
    let time = |f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for _ in 0..=runs.max(1) {
            let started = Instant::now();
            f()?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.remove(0);
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
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
    println!("ranking {all} passages, the best {} by keywords embedded (medians, ms)", best.len());
    println!("  their tokens whole (the model reads at most 512): {tokens:?}");
    println!("  first way: question + passages whole, one batch   {first_way:8.1}");
    println!("  now: keywords, question alone, first {EMBED_TOKENS} tokens   {current:8.1}");
    println!("    of which the question alone                        {question_alone:8.1}");
    println!("    of which keywords                                  {keywords:8.1}");
    println!(
        "  cores: {}",
        std::thread::available_parallelism().map(|n| n.get().to_string()).unwrap_or_else(|_| "?".into())
    );
    Ok(())
}
