//! Time a web search adds to a chat turn, with 5 results and pages served from loopback
//! (`modelforge_testkit::web_server`), split into search, fetch, extract and rank. Nothing is
//! cached between runs. The queries are the user's words (a model writing them costs one short
//! generation, measured by the generation benchmarks).
//!
//! ```text
//! cargo run --release -p modelforge-benches --bin web-bench -- [--runs 20] [--embedder DIR|none]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use modelforge_core::Embedder;
use modelforge_engine::BertEmbedder;
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let embedder: Option<Arc<dyn Embedder>> = match args.embedder.as_deref() {
        Some("none") => None,
        Some(dir) => Some(Arc::new(BertEmbedder::load(PathBuf::from(dir))?)),
        None => Some(Arc::new(BertEmbedder::load(modelforge_testkit::minilm_dir())?)),
    };
    let server = WebServer::start();
    // Five pages: two articles, a page over the size cap, and two more copies of articles.
    server.set_results(&[web::TIDES, web::CHINESE, web::LARGE, web::INJECTION, "tides?copy=2"]);
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
        let found = search.research(&model, &[], "What causes tides, and why are there two a day?");
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
    Ok(())
}
