//! Hot paths that run on every chat turn: model inspection, memory extraction, context
//! assembly, stop-string matching.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use modelforge_core::{ChatMessage, Memory, MemoryExtractor, MemoryId, MemoryKind, UserId};
use modelforge_engine::stop::StopMatcher;
use modelforge_memory::{ContextBudget, ContextRequest, RuleExtractor, assemble_context};

fn inspect_gguf(c: &mut Criterion) {
    let path = modelforge_testkit::smollm2_gguf();
    c.bench_function("inspect SmolLM2 GGUF header", |b| {
        b.iter(|| modelforge_core::inspect(black_box(&path)).unwrap())
    });
}

fn extraction(c: &mut Criterion) {
    let extractor = RuleExtractor::new();
    let turn = [
        ChatMessage::user("My name is Lina and I live in Lyon. I love jazz but I hate olives."),
        ChatMessage::assistant("Nice to meet you, Lina!"),
    ];
    c.bench_function("rule extraction, one turn", |b| {
        b.iter(|| extractor.extract(black_box(&turn), &[]).unwrap())
    });
}

fn assembly(c: &mut Criterion) {
    let user_id = UserId::new();
    let memories: Vec<Memory> = (0..20)
        .map(|i| Memory {
            id: MemoryId::new(),
            user_id,
            kind: MemoryKind::Fact,
            content: format!("The user mentioned fact number {i}."),
            source_session_id: None,
            created_at: chrono::Utc::now(),
        })
        .collect();
    let history: Vec<ChatMessage> = (0..400)
        .map(|i| {
            if i % 2 == 0 {
                ChatMessage::user(format!("question {i} "))
            } else {
                ChatMessage::assistant("answer ".repeat(20))
            }
        })
        .collect();
    let request = ContextRequest {
        system_prompt: "You are a helpful assistant.",
        memories: &memories,
        summary: None,
        summarized_messages: 0,
        history: &history,
    };
    let budget = ContextBudget::new(4096, 512);
    let count = |s: &str| s.split_whitespace().count();
    c.bench_function("assemble context, 400 messages, 20 memories", |b| {
        b.iter(|| assemble_context(black_box(&request), &budget, &count).unwrap())
    });
}

fn stop_strings(c: &mut Criterion) {
    let stops = vec!["<|im_end|>".to_owned(), "\nUser:".to_owned()];
    let pieces: Vec<String> = (0..512).map(|i| format!(" word{i}")).collect();
    c.bench_function("stop matching, 512 pieces", |b| {
        b.iter(|| {
            let mut m = StopMatcher::new(&stops);
            for p in &pieces {
                black_box(m.push(p));
            }
        })
    });
}

criterion_group!(benches, inspect_gguf, extraction, assembly, stop_strings);
criterion_main!(benches);
