//! The store's hot paths on SQLite and PostgreSQL: message appends from one and from eight
//! threads, the first page of a long session list, login (argon2id) and token verification.
//!
//! PostgreSQL runs use a scratch schema on `MODELFORGE_BENCH_POSTGRES_URL` (default: the local
//! server `.ci/run` starts); they are skipped, loudly, when it is unreachable.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use modelforge_core::{Actor, ChatMessage, NewUser, Page, SessionQuery, SessionStore, UserRole};
use modelforge_store::{PgStore, SqliteStore, StoreOptions};
use tempfile::TempDir;

const PASSWORD: &str = "bench password 42";
const THREADS: usize = 8;

struct Bench {
    name: &'static str,
    store: Box<dyn SessionStore>,
    _dir: Option<TempDir>,
}

fn options() -> StoreOptions {
    StoreOptions::with_secret(b"bench-secret-0123456789abcdef-0123456789".to_vec())
}

fn stores() -> Vec<Bench> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("bench.db"), options()).unwrap();
    let mut stores = vec![Bench { name: "sqlite", store: Box::new(sqlite), _dir: Some(dir) }];
    let url = std::env::var("MODELFORGE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match PgStore::open_scratch(&url, options()) {
        Ok(pg) => stores.push(Bench { name: "postgres", store: Box::new(pg), _dir: None }),
        Err(err) => eprintln!("SKIPPING the PostgreSQL benchmarks: {err}"),
    }
    stores
}

fn user(store: &dyn SessionStore, name: &str) -> Actor {
    let new = NewUser { username: name.into(), password: PASSWORD.into(), email: None, role: UserRole::User };
    store.create_user(&new).unwrap().actor()
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("append message");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20);
    for bench in stores() {
        let store = bench.store.as_ref();
        let actor = user(store, "appender");
        let sessions: Vec<_> =
            (0..THREADS).map(|i| store.create_session(&actor, &format!("s{i}")).unwrap().id).collect();
        let message = ChatMessage::user("A typical question of a few dozen words about the weather in Lyon.");

        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("1 thread", bench.name), |b| {
            b.iter(|| store.append_message(&actor, sessions[0], &message, Some(14)).unwrap())
        });

        // Each iteration is one append on each of 8 threads, each to its own session.
        group.throughput(Throughput::Elements(THREADS as u64));
        group.bench_function(BenchmarkId::new("8 threads", bench.name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for &session in &sessions {
                        let message = &message;
                        scope.spawn(move || {
                            for _ in 0..iters {
                                store.append_message(&actor, session, message, Some(14)).unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn session_list(c: &mut Criterion) {
    let mut group = c.benchmark_group("list 50 newest of 10000 sessions");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for bench in stores() {
        let store = bench.store.as_ref();
        let actor = user(store, "hoarder");
        for i in 0..10_000 {
            store.create_session(&actor, &format!("session {i}")).unwrap();
        }
        let query = SessionQuery { page: Page::first(50), ..SessionQuery::default() };
        assert_eq!(store.list_sessions(&actor, &query).unwrap().sessions.len(), 50);
        group.bench_function(bench.name, |b| {
            b.iter(|| black_box(store.list_sessions(&actor, &query).unwrap()))
        });
    }
    group.finish();
}

fn auth(c: &mut Criterion) {
    let bench = stores().into_iter().next().unwrap();
    let store = bench.store.as_ref();
    let actor = user(store, "lina");
    let mut group = c.benchmark_group("auth (sqlite)");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("login (argon2id m=19MiB t=2 p=1)", |b| {
        b.iter(|| store.login("lina", PASSWORD).unwrap())
    });
    let token = store.issue_token(&actor).unwrap();
    group.sample_size(50);
    group
        .bench_function("verify access token", |b| b.iter(|| store.verify_token(black_box(&token)).unwrap()));
    group.finish();
}

criterion_group!(benches, appends, session_list, auth);
criterion_main!(benches);
