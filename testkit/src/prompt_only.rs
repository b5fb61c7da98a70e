//! [`PromptOnly`]: a real model's tokenizer, context and chat template with a fixed answer, for
//! measuring or testing what happens around generation without paying for it.

use std::sync::Arc;

use modelforge_core::{
    BackendError, ChatMessage, FinishReason, Generation, GenerationParams, LoadedModel, ModelInfo,
    PieceCallback, Usage,
};

/// Wraps a model: prompts are counted and rendered by it exactly as in a real turn, but every
/// generation returns `text` with `finish_reason` at once, without calling the callback.
pub struct PromptOnly {
    inner: Arc<dyn LoadedModel>,
    text: String,
    finish_reason: FinishReason,
}

impl PromptOnly {
    /// Answers every prompt with `text`, ending for `finish_reason`.
    pub fn new(inner: Arc<dyn LoadedModel>, text: impl Into<String>, finish_reason: FinishReason) -> Self {
        Self { inner, text: text.into(), finish_reason }
    }
}

impl LoadedModel for PromptOnly {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn context_length(&self) -> u32 {
        self.inner.context_length()
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, BackendError> {
        self.inner.tokenize(text, add_special)
    }

    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        self.inner.render_chat(messages, add_generation_prompt)
    }

    fn generate(
        &self,
        prompt: &str,
        _params: &GenerationParams,
        _on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let count = |text: &str| self.inner.count_tokens(text).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let usage = Usage {
            prompt_tokens: count(prompt)?,
            completion_tokens: count(&self.text)?,
            ..Usage::default()
        };
        Ok(Generation { text: self.text.clone(), finish_reason: self.finish_reason, usage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo_model::EchoModel;

    #[test]
    fn prompts_are_the_inner_models_and_the_answer_is_fixed() {
        let model = PromptOnly::new(Arc::new(EchoModel::new()), "OK.", FinishReason::Stop);
        let prompt = model.render_chat(&[ChatMessage::user("one two three")], true).unwrap();
        assert_eq!(
            prompt,
            EchoModel::new().render_chat(&[ChatMessage::user("one two three")], true).unwrap()
        );
        let mut called = false;
        let generation = model
            .generate(&prompt, &GenerationParams::greedy(), &mut |_| {
                called = true;
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!((generation.text.as_str(), generation.finish_reason), ("OK.", FinishReason::Stop));
        assert_eq!(generation.usage.prompt_tokens as usize, model.count_tokens(&prompt).unwrap());
        assert!(!called, "no piece is streamed");
    }
}
