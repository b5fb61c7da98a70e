//! Chat templates rendered in Rust with minijinja.
//!
//! Both backends build the prompt here, from the model's own Jinja template, so the same
//! messages give the same tokens whichever backend runs them. Templates written for Python's
//! Jinja2 call string methods such as `.strip()`; `minijinja-contrib`'s pycompat layer
//! provides them.

use minijinja::{Environment, ErrorKind, context};
use modelforge_core::{BackendError, ChatMessage};

/// The template [`ChatTemplate::new`] falls back to when given none: ChatML, which most small
/// instruction-tuned models (SmolLM2, Qwen) were trained on. The backends do not rely on it:
/// for a model without a template they choose a format from its vocabulary
/// ([`crate::turn_format`]).
pub const FALLBACK_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message.role + '\n' + \
     message.content + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template with the special tokens it may refer to.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    is_fallback: bool,
    /// Whether the template refers to `tools` (renders function definitions).
    renders_tools: bool,
    /// The model and template named in render errors.
    label: Option<String>,
}

impl ChatTemplate {
    /// Compiles `source`, or the [`FALLBACK_TEMPLATE`] (with a warning) when `source` is
    /// `None`.
    pub fn new(source: Option<&str>, bos_token: &str, eos_token: &str) -> Result<Self, BackendError> {
        let is_fallback = source.is_none();
        if is_fallback {
            tracing::warn!("the model has no chat template; using ChatML as a fallback");
        }
        let source = source.unwrap_or(FALLBACK_TEMPLATE).to_owned();
        let renders_tools = source.contains("tools");
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source).map_err(template_error)?;
        Ok(Self {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            is_fallback,
            renders_tools,
            label: None,
        })
    }

    /// The same template, naming `model` and `template` (e.g. "the built-in `gemma`
    /// template") in its render errors.
    pub fn with_label(mut self, model: &str, template: &str) -> Self {
        self.label = Some(format!("model `{model}`, {template}"));
        self
    }

    /// Whether the model had no template and ChatML is used instead.
    pub fn is_fallback(&self) -> bool {
        self.is_fallback
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// reply begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        self.render_with_tools(messages, &[], add_generation_prompt)
    }

    /// Whether the template renders function definitions passed as `tools`.
    pub fn renders_tools(&self) -> bool {
        self.renders_tools
    }

    /// Renders `messages` with `tools` (OpenAI-style function definitions) passed to the
    /// template as `tools`, as Hugging Face's `apply_chat_template` does; empty `tools` are
    /// passed as undefined, so templates that test `if tools` see none.
    pub fn render_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        let labelled = |err: minijinja::Error| match (template_error(err), &self.label) {
            (BackendError::Template { reason }, Some(label)) => {
                BackendError::Template { reason: format!("{label}: {reason}") }
            }
            (err, _) => err,
        };
        let template = self.env.get_template("chat").map_err(labelled)?;
        let tools = (!tools.is_empty()).then_some(tools);
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(labelled)
    }
}

fn template_error(err: minijinja::Error) -> BackendError {
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        reason.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    BackendError::Template { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-Instruct's template, as shipped in its GGUF.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_chatml_with_a_default_system_prompt() {
        let t = ChatTemplate::new(Some(SMOLLM2), "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&[ChatMessage::user("Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_work() {
        let t = ChatTemplate::new(Some("{{ messages[0].content.strip().upper() }}"), "", "").unwrap();
        assert_eq!(t.render(&[ChatMessage::user("  hi ")], false).unwrap(), "HI");
    }

    #[test]
    fn raise_exception_becomes_a_template_error() {
        let t = ChatTemplate::new(Some("{{ raise_exception('roles must alternate') }}"), "", "").unwrap();
        let err = t.render(&[], false).unwrap_err();
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }

    #[test]
    fn a_missing_template_falls_back_to_chatml() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        assert!(t.is_fallback());
        let out = t.render(&[ChatMessage::system("S"), ChatMessage::user("U")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn tools_reach_templates_that_render_them() {
        let source = "{% if tools %}{% for t in tools %}[{{ t.function.name }}]{% endfor %}{% endif %}{{ messages[0].content }}";
        let t = ChatTemplate::new(Some(source), "", "").unwrap();
        assert!(t.renders_tools());
        let tool = serde_json::json!({ "type": "function", "function": { "name": "weather" } });
        assert_eq!(t.render_with_tools(&[ChatMessage::user("hi")], &[tool], false).unwrap(), "[weather]hi");
        assert_eq!(t.render(&[ChatMessage::user("hi")], false).unwrap(), "hi");
        assert!(!ChatTemplate::new(None, "", "").unwrap().renders_tools());
    }

    #[test]
    fn a_broken_template_is_a_clear_error() {
        let err = ChatTemplate::new(Some("{% for x in %}"), "", "").unwrap_err();
        assert!(matches!(err, BackendError::Template { .. }));
    }
}
