//! Context assembly: what is kept, what is left out, and that the report says so exactly.

mod common;

use common::memory_at;
use modelforge_core::{ChatMessage, Memory, MemoryKind, Role};
use modelforge_memory::{
    AssembledContext, ContextBudget, ContextError, ContextRequest, MEMORY_HEADER, SUMMARY_HEADER,
    assemble_context,
};

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// A conversation of `pairs` question/answer pairs of three words each, then a new question.
fn conversation(pairs: usize) -> Vec<ChatMessage> {
    let mut history = Vec::new();
    for i in 0..pairs {
        history.push(ChatMessage::user(format!("question {i} here")));
        history.push(ChatMessage::assistant(format!("answer {i} here")));
    }
    history.push(ChatMessage::user("the new question"));
    history
}

fn budget(prompt_tokens: u32, overhead: u32) -> ContextBudget {
    ContextBudget {
        context_length: prompt_tokens + 100,
        max_tokens: 100,
        per_message_overhead: overhead,
        memory_share: 1.0,
    }
}

fn assemble(
    prompt: &str,
    memories: &[Memory],
    history: &[ChatMessage],
    budget: ContextBudget,
) -> AssembledContext {
    let req =
        ContextRequest { system_prompt: prompt, memories, summary: None, summarized_messages: 0, history };
    assemble_context(&req, &budget, &words).expect("fits")
}

/// The tokens of the messages, counted independently of the assembler.
fn recount(ctx: &AssembledContext, overhead: u32) -> u32 {
    ctx.messages.iter().map(|m| words(&m.content) as u32 + overhead).sum()
}

#[test]
fn everything_fits_and_the_report_says_so() {
    let memories = [memory_at(1, MemoryKind::Profile, "The user's name is Lina.")];
    let history = conversation(2);
    let ctx = assemble("Be brief.", &memories, &history, budget(1000, 8));

    assert_eq!(ctx.messages.len(), 1 + history.len());
    assert_eq!(ctx.messages[0].role, Role::System);
    assert_eq!(ctx.messages[0].content, format!("Be brief.\n\n{MEMORY_HEADER}\n- The user's name is Lina."));
    assert_eq!(ctx.messages[1..], history[..]);
    let report = &ctx.report;
    assert!(report.is_complete());
    assert_eq!(report.budget_tokens, 1000);
    assert_eq!(report.used_tokens, recount(&ctx, 8));
    assert_eq!(report.memories_used, [memories[0].id]);
    assert_eq!((report.history_used, report.history_left_out), (5, 0));
    assert!(report.summary().starts_with("nothing left out"), "{}", report.summary());
}

#[test]
fn the_oldest_messages_are_dropped_first_and_counted() {
    // System "sys" = 1 + 1. Each message: 3 words + 1. New question: 3 + 1.
    // Budget 2 + 4 + 4 * 4 = 22 keeps the new question and the last two pairs.
    let history = conversation(5);
    let ctx = assemble("sys", &[], &history, budget(22, 1));

    assert_eq!(ctx.report.history_used, 5);
    assert_eq!(ctx.report.history_left_out, 6);
    assert_eq!(ctx.messages[1..], history[6..]);
    assert_eq!(ctx.messages[1].role, Role::User);
    assert_eq!(ctx.report.used_tokens, 22);
    assert_eq!(ctx.report.used_tokens, recount(&ctx, 1));
    assert_eq!(ctx.report.summary(), "left out 6 older messages to fit 22 tokens");
}

#[test]
fn kept_history_never_opens_with_an_orphaned_answer() {
    // Budget 2 + 4 + 3 * 4 = 18 would fit "answer 3", "question 4", "answer 4": the answer
    // whose question was dropped goes too.
    let history = conversation(5);
    let ctx = assemble("sys", &[], &history, budget(18, 1));

    assert_eq!(ctx.messages[1..], history[8..]);
    assert_eq!(ctx.messages[1].role, Role::User);
    assert_eq!((ctx.report.history_used, ctx.report.history_left_out), (3, 8));
    assert_eq!(ctx.report.used_tokens, 14);
    assert_eq!(ctx.report.used_tokens, recount(&ctx, 1));
}

#[test]
fn the_new_message_is_kept_when_nothing_else_fits() {
    let history = conversation(3);
    let ctx = assemble("sys", &[], &history, budget(6, 1));

    assert_eq!(ctx.messages, [ChatMessage::system("sys"), history.last().unwrap().clone()]);
    assert_eq!((ctx.report.history_used, ctx.report.history_left_out), (1, 6));
}

#[test]
fn too_long_when_the_prompt_and_new_message_alone_do_not_fit() {
    let history = [ChatMessage::user("one two three four five")];
    let req = ContextRequest {
        system_prompt: "a b c",
        memories: &[],
        summary: None,
        summarized_messages: 0,
        history: &history,
    };
    let budget = ContextBudget::new(30, 10);
    let err = assemble_context(&req, &budget, &words).unwrap_err();

    // (3 + 8) + (5 + 8) = 24 needed, 30 - 10 = 20 available.
    assert_eq!(err, ContextError::TooLong { needed: 24, budget: 20 });
    let message = err.to_string();
    assert!(message.contains("24") && message.contains("20"), "{message}");
}

#[test]
fn max_tokens_larger_than_the_window_leaves_no_budget() {
    let history = [ChatMessage::user("hi")];
    let req = ContextRequest {
        system_prompt: "",
        memories: &[],
        summary: None,
        summarized_messages: 0,
        history: &history,
    };
    let err = assemble_context(&req, &ContextBudget::new(100, 200), &words).unwrap_err();
    assert_eq!(err, ContextError::TooLong { needed: 9, budget: 0 });
}

#[test]
fn memories_are_included_in_the_given_order_while_they_fit() {
    // Most relevant first, as retrieval ranks them; not in time order.
    let memories = [
        memory_at(30, MemoryKind::Preference, "The user likes jazz."),
        memory_at(10, MemoryKind::Profile, "The user's name is Lina."),
        memory_at(20, MemoryKind::Profile, "The user lives in Lyon."),
    ];
    let history = [ChatMessage::user("hello")];
    // "sys" (1) + header (9) + "- The user likes jazz." (5) + "- The user's name is Lina." (6)
    // + overhead 1 = 22, and the new message 2: the third memory (6 more) does not fit.
    let ctx = assemble("sys", &memories, &history, budget(24, 1));

    let system = &ctx.messages[0].content;
    assert!(system.contains("The user likes jazz.") && system.contains("Lina"), "{system}");
    assert!(!system.contains("Lyon"), "{system}");
    assert_eq!(ctx.report.memories_used, [memories[1].id, memories[0].id], "rendered oldest first");
    assert!(system.find("Lina").unwrap() < system.find("jazz").unwrap(), "{system}");
    assert_eq!(ctx.report.memories_left_out, [memories[2].id]);
    assert_eq!(ctx.report.used_tokens, 24);
    assert_eq!(ctx.report.summary(), "left out 1 memory to fit 24 tokens");
}

#[test]
fn memories_take_no_more_than_their_share_of_the_budget() {
    let memories: Vec<Memory> =
        (0..40).map(|i| memory_at(i, MemoryKind::Fact, &format!("The user owns item number {i}."))).collect();
    let history = conversation(2);
    let budget = ContextBudget { memory_share: 0.25, ..budget(400, 1) };
    let ctx = assemble("sys", &memories, &history, budget);
    // The system message holds the prompt and memories: at most a quarter of 400 tokens for
    // the memories on top of the prompt's own cost.
    let system_cost = words(&ctx.messages[0].content) as u32 + 1;
    assert!(system_cost <= 100 + 2, "{system_cost}");
    assert!(!ctx.report.memories_used.is_empty() && !ctx.report.memories_left_out.is_empty());
    assert_eq!(ctx.report.history_left_out, 0, "history keeps the rest of the budget");
    let everything = assemble("sys", &memories, &history, ContextBudget { memory_share: 1.0, ..budget });
    assert!(everything.report.memories_used.len() > ctx.report.memories_used.len());
}

#[test]
fn a_summary_of_older_turns_goes_in_the_system_message_and_the_report() {
    let history = conversation(1);
    let req = ContextRequest {
        system_prompt: "sys",
        memories: &[],
        summary: Some("The user asked about trains and buses."),
        summarized_messages: 12,
        history: &history,
    };
    let ctx = assemble_context(&req, &budget(1000, 1), &words).unwrap();
    assert_eq!(
        ctx.messages[0].content,
        format!("sys\n\n{SUMMARY_HEADER}\nThe user asked about trains and buses.")
    );
    assert_eq!(ctx.report.history_summarized, 12);
    assert!(ctx.report.summary().ends_with("12 older messages summarized"), "{}", ctx.report.summary());
    assert_eq!(ctx.report.used_tokens, recount(&ctx, 1));
}

#[test]
fn memories_that_do_not_fit_leave_no_empty_header() {
    let memories = [memory_at(1, MemoryKind::Profile, "The user lives in Lyon.")];
    let history = [ChatMessage::user("hello")];
    let ctx = assemble("sys", &memories, &history, budget(4, 1));

    assert_eq!(ctx.messages[0].content, "sys");
    assert_eq!(ctx.report.memories_left_out, [memories[0].id]);
    assert!(ctx.report.memories_used.is_empty());
}

#[test]
fn the_report_is_consistent_for_every_budget() {
    let memories: Vec<Memory> =
        (0..4).map(|i| memory_at(i, MemoryKind::Fact, &format!("The user owns item number {i}."))).collect();
    let history = conversation(6);
    let mut fitted = 0;
    for prompt_tokens in 0..150 {
        for overhead in [0, 1, 8] {
            let req = ContextRequest {
                system_prompt: "You are helpful.",
                memories: &memories,
                summary: None,
                summarized_messages: 0,
                history: &history,
            };
            let budget = budget(prompt_tokens, overhead);
            match assemble_context(&req, &budget, &words) {
                Ok(ctx) => {
                    fitted += 1;
                    let r = &ctx.report;
                    assert!(r.used_tokens <= r.budget_tokens, "{r:?}");
                    assert_eq!(r.used_tokens, recount(&ctx, overhead));
                    assert_eq!(r.history_used + r.history_left_out, history.len());
                    assert_eq!(r.memories_used.len() + r.memories_left_out.len(), memories.len());
                    assert_eq!(ctx.messages.last(), history.last());
                    assert_eq!(ctx.messages.len(), 1 + r.history_used);
                    assert_eq!(r.is_complete(), r.history_left_out == 0 && r.memories_left_out.is_empty());
                }
                Err(ContextError::TooLong { needed, budget: b }) => {
                    assert!(needed > b);
                    assert_eq!(b, prompt_tokens);
                }
                Err(other) => panic!("unexpected error {other}"),
            }
        }
    }
    assert!(fitted > 300, "most budgets fit ({fitted})");
}

#[test]
fn the_report_serializes_for_json_output() {
    let memories = [memory_at(1, MemoryKind::Profile, "The user lives in Lyon.")];
    let history = conversation(1);
    let ctx = assemble("sys", &memories, &history, budget(1000, 8));
    let json = serde_json::to_value(&ctx.report).unwrap();
    assert_eq!(json["budget_tokens"], 1000);
    assert_eq!(json["history_used"], 3);
    assert_eq!(json["memories_used"][0], memories[0].id.to_string());
}

#[test]
fn the_default_budget_reserves_reply_tokens() {
    let budget = ContextBudget::default();
    assert_eq!(budget.per_message_overhead, 8);
    assert_eq!(budget.prompt_budget(), budget.context_length - budget.max_tokens);
}
