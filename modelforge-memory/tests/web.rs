//! Web search against a loopback search engine and web (`modelforge_testkit::web_server`):
//! one behaviour suite for both providers, the guarded fetcher, and the chat turn with
//! sources, driven by the echo model. `cargo test -p modelforge-memory --features web --test web`

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use modelforge_core::{
    Actor, ChatStore, Embedder, GenerationParams, NewUser, Role, SearchError, SearchProvider, UserRole,
    UserStore, WebSearchOptions,
};
use modelforge_engine::BertEmbedder;
use modelforge_memory::web::{EMBED_TOKENS, FetchError, FetchOptions, PageFetcher, Passage, rank};
use modelforge_memory::{
    ChatError, Conversation, JsonFields, JsonProvider, MemoryBank, QueriesBy, SOURCES_HEADER,
    SearxngProvider, TurnOptions, TurnOutcome, WEB_FAILED_RULES, WEB_RULES, WebOptions, WebSearch,
};
use modelforge_testkit::echo_model::EchoModel;
use modelforge_testkit::memory_store::InMemoryStore;
use modelforge_testkit::web_server::{self as web, WebServer};

// ---- One behaviour suite, both providers -------------------------------------------------

type Factory = fn(&WebServer) -> Box<dyn SearchProvider>;

fn searxng(server: &WebServer) -> Box<dyn SearchProvider> {
    Box::new(SearxngProvider::new(&server.url()).unwrap())
}

fn json_api(server: &WebServer) -> Box<dyn SearchProvider> {
    let fields = JsonFields::default()
        .with_results("data.items")
        .with_url("link")
        .with_title("name")
        .with_snippet("summary")
        .with_published("date");
    Box::new(JsonProvider::new(&server.json_template(), fields).unwrap())
}

const PROVIDERS: [(&str, Factory); 2] = [("searxng", searxng), ("json", json_api)];

#[test]
fn providers_return_the_results_in_order_with_titles_snippets_and_dates() {
    let server = WebServer::start();
    for (name, make) in PROVIDERS {
        let provider = make(&server);
        let hits =
            provider.search("what causes tides", &WebSearchOptions::default().with_max_results(3)).unwrap();
        assert_eq!(hits.len(), 3, "{name}");
        assert_eq!(hits[0].url, server.page_url(web::TIDES), "{name}");
        assert_eq!(hits[0].title, "What causes tides? | Ocean Facts", "{name}");
        assert_eq!(hits[0].snippet, "Tides are caused by the Moon...", "{name}");
        assert_eq!(hits[0].published, chrono::NaiveDate::from_ymd_opt(2024, 3, 1), "{name}");
        assert_eq!(hits[1].title, "潮汐的成因", "{name}");
        assert_eq!(hits[1].published, None, "{name}");
    }
}

#[test]
fn providers_explain_rate_limits_and_an_unreachable_service() {
    let server = WebServer::start();
    server.fail_search_with(Some(429));
    for (name, make) in PROVIDERS {
        let err = make(&server).search("tides", &WebSearchOptions::default()).unwrap_err();
        assert!(matches!(err, SearchError::RateLimited { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains("rate limiting (HTTP 429)"), "{name}: {err}");
    }
    let providers: Vec<Box<dyn SearchProvider>> = PROVIDERS.iter().map(|(_, make)| make(&server)).collect();
    drop(server);
    for provider in providers {
        let err = provider.search("tides", &WebSearchOptions::default()).unwrap_err();
        assert!(matches!(err, SearchError::Unreachable { .. }), "{}: {err:?}", provider.name());
        assert!(err.to_string().contains("cannot reach the search service"), "{err}");
    }
}

#[test]
fn searxng_explains_a_403_as_json_not_enabled_and_a_429_with_its_wait() {
    let server = WebServer::start();
    server.fail_search_with(Some(403));
    let err = searxng(&server).search("tides", &WebSearchOptions::default()).unwrap_err();
    assert!(matches!(err, SearchError::JsonDisabled { .. }), "{err:?}");
    assert!(err.to_string().contains("add `json` to `search.formats`"), "{err}");
    server.fail_search_with(Some(429));
    let err = searxng(&server).search("tides", &WebSearchOptions::default()).unwrap_err();
    assert!(matches!(err, SearchError::RateLimited { retry_after: Some(30), .. }), "{err:?}");
    assert!(err.to_string().contains("server.limiter"), "{err}");
}

// ---- The guarded fetcher -------------------------------------------------------------------

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn the_fetcher_refuses_loopback_unless_allowed() {
    let server = WebServer::start();
    let err =
        PageFetcher::new(FetchOptions::default()).fetch(&server.page_url(web::TIDES), soon()).unwrap_err();
    assert!(matches!(&err, FetchError::Refused { reason, .. } if reason.contains("loopback")), "{err:?}");
    assert!(server.requests().is_empty(), "nothing was sent: {:?}", server.requests());
    let mut allowed = FetchOptions::default();
    allowed.allow_private = true;
    let page = PageFetcher::new(allowed).fetch(&server.page_url(web::TIDES), soon()).unwrap();
    assert!(page.html.contains(web::TIDES_FACT));
}

#[test]
fn a_redirect_to_the_metadata_address_is_refused_even_from_an_allowed_host() {
    let server = WebServer::start();
    let mut options = FetchOptions::default();
    options.allow_hosts = vec![server.host()];
    let err = PageFetcher::new(options).fetch(&server.page_url(web::REDIRECT), soon()).unwrap_err();
    match &err {
        FetchError::Refused { url, reason } => {
            assert!(url.starts_with("http://169.254.169.254/"), "{url}");
            assert!(reason.contains("cloud metadata"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn pages_are_decoded_by_the_charset_of_their_header_or_their_meta_tag() {
    let server = WebServer::start();
    let mut options = FetchOptions::default();
    options.allow_private = true;
    let fetcher = PageFetcher::new(options);
    // GBK, declared in `Content-Type: text/html; charset=gbk` only.
    let page = fetcher.fetch(&server.page_url(web::GBK), soon()).unwrap();
    assert_eq!(page.encoding, "GBK");
    assert!(page.html.contains(web::GBK_FACT), "{}", page.html);
    assert!(!page.html.contains('\u{fffd}'));
    // windows-1252, declared in `<meta charset="windows-1252">` only.
    let page = fetcher.fetch(&server.page_url(web::WINDOWS_1252), soon()).unwrap();
    assert_eq!(page.encoding, "windows-1252");
    assert!(page.html.contains(web::WINDOWS_1252_FACT), "{}", page.html);
    // UTF-8 pages stay as they were.
    let page = fetcher.fetch(&server.page_url(web::CHINESE), soon()).unwrap();
    assert_eq!(page.encoding, "UTF-8");
    assert!(page.html.contains(web::CHINESE_FACT));
}

#[test]
fn a_large_page_is_cut_at_the_cap() {
    let server = WebServer::start();
    let mut options = FetchOptions::default();
    (options.allow_private, options.max_bytes) = (true, 100_000);
    let page = PageFetcher::new(options).fetch(&server.page_url(web::LARGE), soon()).unwrap();
    assert!(page.truncated);
    assert_eq!(page.html.len(), 100_000);
}

// ---- Ranking by meaning, with all-MiniLM-L6-v2 ------------------------------------------------

fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    EMBEDDER.get_or_init(|| Arc::new(BertEmbedder::load(modelforge_testkit::minilm_dir()).unwrap())).clone()
}

fn passages(texts: &[&str]) -> Vec<Passage> {
    texts.iter().enumerate().map(|(page, t)| Passage { page, text: (*t).to_owned(), score: 0.0 }).collect()
}

#[test]
fn the_embedder_ranks_a_paraphrase_without_shared_keywords_above_an_unrelated_passage() {
    let question = "Why does the sea rise and fall twice a day?";
    let unrelated = "Bananas are rich in potassium and are often eaten at breakfast by athletes.";
    let paraphrase = "The Moon's gravity pulls the oceans toward it, so coasts get two high waters and \
                      two low waters in roughly every twenty-four hours.";
    // Keywords alone cannot tell them apart: neither shares a word with the question.
    let mut by_keywords = passages(&[unrelated, paraphrase]);
    rank(question, &mut by_keywords, None);
    assert!(by_keywords.iter().all(|p| p.score == 0.0), "{by_keywords:?}");
    assert_eq!(by_keywords[0].page, 0);

    let embedder = embedder();
    let mut ranked = passages(&[unrelated, paraphrase]);
    rank(question, &mut ranked, Some(embedder.as_ref()));
    assert_eq!(ranked[0].page, 1, "{ranked:?}");
    assert!(ranked[0].score > ranked[1].score + 0.2, "{ranked:?}");

    // Only the passages' first tokens are embedded: a long tail after the paraphrase, and
    // after the unrelated text, changes nothing.
    let tail = " Ships, harbours, lighthouses and fishing boats line the old stone quay.".repeat(30);
    let (unrelated_long, paraphrase_long) = (format!("{unrelated}{tail}"), format!("{paraphrase}{tail}"));
    assert!(embedder.count_tokens(&paraphrase_long).unwrap() > 2 * EMBED_TOKENS);
    let mut long = passages(&[unrelated_long.as_str(), paraphrase_long.as_str()]);
    rank(question, &mut long, Some(embedder.as_ref()));
    assert_eq!(long[0].page, 1, "{long:?}");
}

#[test]
fn with_the_embedder_the_chat_turn_cites_the_pages_that_answer() {
    let server = WebServer::start();
    server.set_results(&[web::INJECTION, web::LARGE, web::TIDES]);
    let options = options(&server).with_model_queries(false);
    let f = fixture_ranked(&server, EchoModel::new(), options, Some(embedder()));
    let outcome = ask(&f, "What pulls the water into a high tide twice a day?");
    assert_eq!(outcome.sources[0].url, server.page_url(web::TIDES), "{:?}", outcome.sources);
    let report = outcome.web.unwrap();
    assert!(report.timings.rank_ms > 0.0);
    assert!(outcome.prompt.last().unwrap().content.contains(web::TIDES_FACT));
}

// ---- The chat turn with web sources ----------------------------------------------------------

struct Fixture {
    store: Arc<InMemoryStore>,
    model: Arc<EchoModel>,
    chat: Conversation,
    lina: Actor,
}

/// A conversation with `model` over an in-memory store holding the user lina; no web search.
fn conversation(model: EchoModel) -> Fixture {
    let store = Arc::new(InMemoryStore::new());
    let new = NewUser {
        username: "lina".into(),
        password: "a long enough password".into(),
        email: None,
        role: UserRole::User,
    };
    let lina = store.create_user(&new).unwrap().actor();
    let model = Arc::new(model);
    let bank = Arc::new(MemoryBank::new(store.clone(), None));
    let chat = Conversation::new(model.clone(), store.clone(), store.clone(), bank);
    Fixture { store, model, chat, lina }
}

/// [`conversation`] searching the fixture server's SearXNG with `options`, ranking by keywords.
fn fixture(server: &WebServer, model: EchoModel, options: WebOptions) -> Fixture {
    fixture_ranked(server, model, options, None)
}

/// [`fixture`] ranking by `embedder` too.
fn fixture_ranked(
    server: &WebServer,
    model: EchoModel,
    options: WebOptions,
    embedder: Option<Arc<dyn Embedder>>,
) -> Fixture {
    let provider = Arc::new(SearxngProvider::new(&server.url()).unwrap());
    let web = Arc::new(WebSearch::new(provider, embedder, options));
    let Fixture { store, model, chat, lina } = conversation(model);
    Fixture { store, model, chat: chat.with_web(web), lina }
}

/// Loopback allowed for the fixture server's own host only, so redirects elsewhere are checked.
fn options(server: &WebServer) -> WebOptions {
    WebOptions::default().with_allow_hosts(vec![server.host()]).with_deadline(Duration::from_secs(10))
}

fn ask(f: &Fixture, text: &str) -> TurnOutcome {
    let session = f.store.create_session(&f.lina, "").unwrap().id;
    let params = GenerationParams { max_tokens: 64, ..GenerationParams::greedy() };
    let turn = TurnOptions::default().with_web(true);
    f.chat.turn_with(&f.lina, session, text, &params, &turn, &mut |_| ControlFlow::Continue(())).unwrap()
}

const QUERIES: &str = r#"{"queries": ["what causes tides", "tides moon"]}"#;

#[test]
fn the_passages_in_the_prompt_come_from_the_pages_and_the_reply_carries_the_sources() {
    let server = WebServer::start();
    server.set_results(&[web::TIDES, web::CHINESE, web::INJECTION]);
    let f = fixture(&server, EchoModel::new().with_replies([QUERIES]), options(&server));
    let outcome = ask(&f, "What causes tides?");

    let report = outcome.web.as_ref().expect("a web report");
    assert_eq!(report.queries, ["what causes tides", "tides moon"]);
    assert_eq!(report.queries_by, Some(QueriesBy::Model));
    assert_eq!(report.error, None);
    assert_eq!(report.results, 3);
    let tides = server.page_url(web::TIDES);
    assert_eq!(outcome.sources[0].n, 1);
    assert_eq!(outcome.sources[0].url, tides, "{:?}", outcome.sources);
    assert_eq!(outcome.sources[0].title, "What causes tides? | Ocean Facts");
    assert_eq!(outcome.sources.len(), 3);
    assert_eq!(outcome.context.sources_used, 3);
    assert_eq!(report.sources, outcome.sources);

    let question = &outcome.prompt.last().unwrap().content;
    assert!(question.starts_with(SOURCES_HEADER), "{question}");
    assert!(question.contains(&format!("[1] What causes tides? | Ocean Facts ({tides})")), "{question}");
    assert!(question.contains(web::TIDES_FACT), "{question}");
    assert!(question.contains(web::CHINESE_FACT), "{question}");
    assert!(question.ends_with("My message: What causes tides?"), "{question}");
    for chrome in web::CHROME {
        assert!(!question.contains(chrome), "{chrome} leaked into the prompt: {question}");
    }
    // The model wrote the queries first, then the answer was generated from the sources.
    let prompts = f.model.prompts();
    assert_eq!(prompts.len(), 2);
    assert!(prompts[0].contains("You write web search queries"));
    // What is stored is the user's own message.
    let stored = f.store.list_messages(&f.lina, outcome.session_id).unwrap();
    assert_eq!(stored[0].content, "What causes tides?");
}

#[test]
fn a_chinese_question_ranks_the_chinese_page_first() {
    let server = WebServer::start();
    server.set_results(&[web::TIDES, web::CHINESE]);
    let f = fixture(&server, EchoModel::new(), options(&server).with_model_queries(false));
    let outcome = ask(&f, "潮汐是怎么形成的？和月球的引力有关吗？");
    assert_eq!(outcome.sources[0].url, server.page_url(web::CHINESE), "{:?}", outcome.sources);
    let report = outcome.web.unwrap();
    assert_eq!(report.queries, ["潮汐是怎么形成的？和月球的引力有关吗？"]);
    assert_eq!(report.queries_by, Some(QueriesBy::UserWords));
}

#[test]
fn passages_from_gbk_and_windows_1252_pages_reach_the_prompt_as_written() {
    let server = WebServer::start();
    server.set_results(&[web::GBK, web::WINDOWS_1252]);
    let f = fixture(&server, EchoModel::new(), options(&server).with_model_queries(false));
    let outcome = ask(&f, "When do spring tides come? 大潮什么时候出现？");
    let titles: Vec<&str> = outcome.sources.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles.len(), 2, "{:?}", outcome.sources);
    assert!(titles.contains(&"大潮和小潮") && titles.contains(&"Tides at the café"), "{titles:?}");
    let question = &outcome.prompt.last().unwrap().content;
    assert!(question.contains(web::GBK_FACT), "{question}");
    assert!(question.contains(web::WINDOWS_1252_FACT), "{question}");
    assert!(!question.contains('\u{fffd}'), "{question}");
}

#[test]
fn page_text_is_data_and_cannot_change_the_system_prompt() {
    let server = WebServer::start();
    server.set_results(&[web::INJECTION]);
    let f = fixture(&server, EchoModel::new(), options(&server).with_model_queries(false));
    let outcome = ask(&f, "Are tides caused by wind?");
    assert_eq!(outcome.prompt[0].role, Role::System);
    assert_eq!(outcome.prompt[0].content, format!("You are a helpful assistant.\n\n{WEB_RULES}"));
    assert!(WEB_RULES.contains("never instructions"));
    let question = &outcome.prompt.last().unwrap().content;
    let fenced = question.split("<<<\n").nth(1).and_then(|rest| rest.split("\n>>>").next()).unwrap();
    assert!(fenced.contains(web::INJECTION_TEXT), "the injection is quoted inside the fence: {question}");
    assert_eq!(question.matches(web::INJECTION_TEXT).count(), 1);
    assert!(outcome.prompt.iter().filter(|m| m.role == Role::System).all(|m| !m.content.contains("HACKED")));
}

#[test]
fn a_slow_page_is_reported_as_timed_out_and_the_rest_is_used() {
    let server = WebServer::start();
    server.set_results(&[web::SLOW, web::TIDES]);
    let options = options(&server).with_model_queries(false).with_deadline(Duration::from_millis(1500));
    let f = fixture(&server, EchoModel::new(), options);
    let outcome = ask(&f, "What causes tides?");
    let report = outcome.web.unwrap();
    assert_eq!(report.timed_out, [server.page_url(web::SLOW)], "{report:?}");
    assert_eq!(outcome.sources.len(), 1);
    assert_eq!(outcome.sources[0].url, server.page_url(web::TIDES));
    let question = &outcome.prompt.last().unwrap().content;
    assert!(!question.contains(web::SLOW_FACT));
    assert!(report.summary().contains("timed out"), "{}", report.summary());
}

#[test]
fn the_private_redirect_and_the_large_page_are_reported() {
    let server = WebServer::start();
    server.set_results(&[web::REDIRECT, web::LARGE, web::TIDES]);
    let options = options(&server).with_model_queries(false).with_max_page_bytes(64 * 1024);
    let f = fixture(&server, EchoModel::new(), options);
    let outcome = ask(&f, "tide tables and what causes tides");
    let report = outcome.web.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].url, server.page_url(web::REDIRECT));
    assert!(report.failed[0].reason.contains("169.254.169.254 is a cloud metadata address"), "{report:?}");
    assert_eq!(report.truncated, [server.page_url(web::LARGE)]);
    let urls: Vec<&str> = outcome.sources.iter().map(|s| s.url.as_str()).collect();
    assert!(urls.contains(&server.page_url(web::TIDES).as_str()), "{urls:?}");
    assert!(!urls.contains(&server.page_url(web::REDIRECT).as_str()));
}

#[test]
fn search_failures_still_answer_and_say_web_search_failed() {
    let server = WebServer::start();
    server.fail_search_with(Some(403));
    let f = fixture(&server, EchoModel::new(), options(&server).with_model_queries(false));
    let outcome = ask(&f, "What causes tides?");
    assert_eq!(outcome.generation.text, "echo: What causes tides?");
    let report = outcome.web.unwrap();
    assert!(report.error.as_deref().unwrap().contains("search.formats"), "{report:?}");
    assert!(report.summary().starts_with("web search failed"));
    assert!(outcome.prompt[0].content.ends_with(WEB_FAILED_RULES));
    assert!(outcome.sources.is_empty());

    drop(server);
    let outcome = ask(&f, "And the moon?");
    assert_eq!(outcome.generation.text, "echo: And the moon?");
    assert!(outcome.web.unwrap().error.unwrap().contains("cannot reach the search service"));
}

#[test]
fn without_a_model_that_writes_json_the_users_words_are_the_query() {
    let server = WebServer::start();
    server.set_results(&[web::TIDES]);
    let f = fixture(&server, EchoModel::new(), options(&server));
    let outcome = ask(&f, "What causes tides?");
    let report = outcome.web.unwrap();
    assert_eq!(report.queries, ["What causes tides?"]);
    assert_eq!(report.queries_by, Some(QueriesBy::UserWords));
    assert!(report.queries_note.unwrap().contains("not the JSON asked for"));
    assert_eq!(outcome.sources.len(), 1);
}

#[test]
fn results_and_pages_are_cached() {
    let server = WebServer::start();
    server.set_results(&[web::TIDES, web::CHINESE]);
    let f = fixture(&server, EchoModel::new(), options(&server).with_model_queries(false));
    let first = ask(&f, "What causes tides?");
    let requests = server.requests().len();
    assert_eq!(requests, 3, "{:?}", server.requests());
    let second = ask(&f, "What causes tides?");
    assert_eq!(server.requests().len(), requests, "{:?}", server.requests());
    assert_eq!(first.sources, second.sources);
}

#[test]
fn sources_stay_within_their_share_and_the_rest_is_reported() {
    let server = WebServer::start();
    server.set_results(&[web::TIDES, web::CHINESE, web::INJECTION]);
    // 300 words of context, 64 for the reply: 30% of 236 leaves room for some sources only.
    let model = EchoModel::new().with_context_length(300);
    let f = fixture(&server, model, options(&server).with_model_queries(false));
    let outcome = ask(&f, "What causes tides?");
    assert!(!outcome.sources.is_empty());
    assert!(outcome.context.sources_left_out > 0, "{:?}", outcome.context);
    assert_eq!(outcome.context.sources_used + outcome.context.sources_left_out, 3);
    let question = &outcome.prompt.last().unwrap().content;
    assert!(question.split_whitespace().count() <= 236 * 3 / 10 + 4, "{question}");
    assert!(outcome.context.summary().contains("web source"), "{}", outcome.context.summary());
}

#[test]
fn web_without_a_search_service_is_a_clear_error() {
    let f = conversation(EchoModel::new());
    let session = f.store.create_session(&f.lina, "").unwrap().id;
    let turn = TurnOptions::default().with_web(true);
    let err = f
        .chat
        .turn_with(&f.lina, session, "hi", &GenerationParams::greedy(), &turn, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(err, ChatError::WebNotConfigured), "{err:?}");
    assert!(f.store.list_messages(&f.lina, session).unwrap().is_empty());
}
