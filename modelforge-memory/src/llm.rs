//! The model-based extractor: the loaded model lists facts as JSON, and a grammar makes sure it
//! can only write JSON of the expected shape, however small the model.

use std::sync::Arc;

use modelforge_core::{
    ChatMessage, GenerationParams, LoadedModel, Memory, MemoryError, MemoryExtractor, MemoryKind, MemoryOp,
    Role,
};
use serde::Deserialize;

use crate::keywords::terms;

/// llama.cpp GBNF for the answer: at most five facts, each a kind, a third-person statement of
/// at most 120 characters, and a confidence with one decimal.
pub const FACTS_GRAMMAR: &str = r#"root ::= "{" ws "\"facts\":" ws "[" ws ( fact ( ws "," ws fact ){0,4} )? ws "]" ws "}"
fact ::= "{" ws "\"kind\":" ws kind ws "," ws "\"content\":" ws content ws "," ws "\"confidence\":" ws confidence ws "}"
kind ::= "\"profile\"" | "\"preference\"" | "\"fact\""
content ::= "\"" ( "The user " | "用户" ) char{2,120} "\""
char ::= [^"\\\x00-\x1F] | "\\" ["\\/nt]
confidence ::= "0." [0-9] | "1.0"
ws ::= [ \n]{0,2}
"#;

const INSTRUCTIONS: &str = "You extract facts about the user from the user's message: who they are \
(name, home, work, family), what they like or dislike, and other lasting facts about them. Write each \
fact as a short sentence about \"the user\", in the language of the message. Leave out questions, \
requests, and facts about other people. Answer with JSON only.";

/// Examples shown before the message, so a small model sees the format and what to leave out.
const EXAMPLES: [(&str, &str); 2] = [
    (
        "I'm a nurse and I love hiking on weekends.",
        r#"{"facts": [{"kind": "profile", "content": "The user is a nurse.", "confidence": 0.9}, {"kind": "preference", "content": "The user loves hiking on weekends.", "confidence": 0.9}]}"#,
    ),
    ("What is the capital of France? My friend lives there.", r#"{"facts": []}"#),
];

/// Asks a loaded model for the facts in the user's latest message.
///
/// Generation is greedy and constrained by [`FACTS_GRAMMAR`], so the answer always parses.
/// Each fact must share at least one keyword with the message and reach `min_confidence`;
/// anything else is taken as invented and dropped. The extractor only proposes additions:
/// [`MemoryBank::learn`](crate::MemoryBank::learn) compares each with the most similar
/// memories and turns it into an update or nothing where one is already known. Needs a backend
/// with grammar sampling (llama.cpp); others answer with an unsupported error.
pub struct LlmExtractor {
    model: Arc<dyn LoadedModel>,
    min_confidence: f32,
    max_tokens: u32,
}

impl LlmExtractor {
    /// An extractor using `model`, keeping facts of confidence 0.5 or more.
    pub fn new(model: Arc<dyn LoadedModel>) -> Self {
        Self { model, min_confidence: 0.5, max_tokens: 320 }
    }

    /// Keeps only facts the model rates at least `min_confidence` (0 to 1).
    pub fn with_min_confidence(mut self, min_confidence: f32) -> Self {
        self.min_confidence = min_confidence;
        self
    }

    /// The messages sent to the model for `user_text`.
    fn prompt(user_text: &str) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::system(INSTRUCTIONS)];
        for (said, answer) in EXAMPLES {
            messages.push(ChatMessage::user(format!("Message: {said}")));
            messages.push(ChatMessage::assistant(answer));
        }
        messages.push(ChatMessage::user(format!("Message: {user_text}")));
        messages
    }
}

#[derive(Deserialize)]
struct Answer {
    facts: Vec<AnswerFact>,
}

#[derive(Deserialize)]
struct AnswerFact {
    kind: MemoryKind,
    content: String,
    confidence: f32,
}

impl MemoryExtractor for LlmExtractor {
    fn name(&self) -> &str {
        "llm"
    }

    fn extract(&self, turn: &[ChatMessage], _existing: &[Memory]) -> Result<Vec<MemoryOp>, MemoryError> {
        let user_text: Vec<&str> =
            turn.iter().filter(|m| m.role == Role::User).map(|m| m.content.as_str()).collect();
        if user_text.is_empty() {
            return Ok(Vec::new());
        }
        let user_text = user_text.join("\n");
        let params = GenerationParams {
            max_tokens: self.max_tokens,
            grammar: Some(FACTS_GRAMMAR.to_owned()),
            ..GenerationParams::greedy()
        };
        let generation = self
            .model
            .chat(&Self::prompt(&user_text), &params, &mut |_| std::ops::ControlFlow::Continue(()))?;
        let answer: Answer =
            serde_json::from_str(&generation.text).map_err(|err| MemoryError::Extraction {
                reason: format!(
                    "the model's answer is not the expected JSON ({err}; finish: {}, {} tokens)",
                    generation.finish_reason.as_str(),
                    generation.usage.completion_tokens
                ),
            })?;
        let said = terms(&user_text);
        let mut ops: Vec<MemoryOp> = Vec::new();
        for fact in answer.facts {
            let content = fact.content.trim().to_owned();
            let grounded = terms(&content).iter().any(|t| said.contains(t));
            let repeated =
                ops.iter().any(|op| matches!(op, MemoryOp::Add { content: c, .. } if *c == content));
            if !grounded || fact.confidence < self.min_confidence || repeated {
                tracing::debug!(%content, grounded, confidence = fact.confidence, "dropped a model fact");
                continue;
            }
            ops.push(MemoryOp::Add { kind: fact.kind, content, confidence: fact.confidence.clamp(0.0, 1.0) });
        }
        tracing::debug!(extractor = "llm", ops = ops.len(), "extracted memory operations");
        Ok(ops)
    }
}
