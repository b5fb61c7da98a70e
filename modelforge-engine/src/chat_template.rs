//! Chat templates rendered in Rust with minijinja.
//!
//! Both backends build the prompt here, from the model's own Jinja template, so the same
//! messages give the same tokens whichever backend runs them. Templates written for Python's
//! Jinja2 call string methods such as `.strip()`; `minijinja-contrib`'s pycompat layer
//! provides them.
//!
//! Tool calls and their results go to the template as Hugging Face's `apply_chat_template`
//! passes them (`message.tool_calls[i].function.{name, arguments}` with the arguments as an
//! object, `role == 'tool'` with `tool_call_id`), for templates that render them; a template
//! with no place for them sees them as plain, labelled text instead (see
//! [`ChatTemplate::render`]).

use minijinja::{Environment, ErrorKind, context};
use modelforge_core::{BackendError, ChatMessage, Role};
use serde_json::{Value, json};

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
    /// Whether the template renders an assistant's `tool_calls`.
    renders_tool_calls: bool,
    /// Whether the template renders messages whose role is `tool`.
    renders_tool_results: bool,
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
        let renders_tool_calls = source.contains("tool_calls");
        let renders_tool_results = ["'tool'", "\"tool\""].iter().any(|role| source.contains(role));
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
            renders_tool_calls,
            renders_tool_results,
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
    ///
    /// Tool results and an assistant's tool calls reach a template that renders them in
    /// Hugging Face's shape. For one that does not (no `'tool'` role, no `tool_calls`), a
    /// tool result becomes a user message labelled with the call it answers (consecutive
    /// results in one message, so roles still alternate), and a call becomes the
    /// `{"name": ..., "arguments": ...}` JSON the model would have written for it.
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
                messages => self.template_messages(messages),
                tools => tools,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(labelled)
    }
}

impl ChatTemplate {
    /// `messages` as the template gets them (see [`ChatTemplate::render`]).
    fn template_messages(&self, messages: &[ChatMessage]) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::with_capacity(messages.len());
        let mut after_tool_text = false;
        for message in messages {
            if message.role == Role::Tool && !self.renders_tool_results {
                let text = tool_result_text(message);
                match out.last_mut() {
                    Some(last) if after_tool_text => {
                        let joined = format!("{}\n\n{text}", last["content"].as_str().unwrap_or_default());
                        last["content"] = Value::String(joined);
                    }
                    _ => out.push(json!({ "role": "user", "content": text })),
                }
                after_tool_text = true;
                continue;
            }
            after_tool_text = false;
            let mut view = json!({ "role": message.role.as_str(), "content": message.content });
            if !message.tool_calls.is_empty() {
                if self.renders_tool_calls {
                    let calls: Vec<Value> = message
                        .tool_calls
                        .iter()
                        .map(|call| {
                            json!({ "id": call.id, "type": "function", "function": {
                                "name": call.name, "arguments": arguments_value(&call.arguments),
                            } })
                        })
                        .collect();
                    view["tool_calls"] = Value::Array(calls);
                } else {
                    view["content"] = Value::String(calls_as_text(message));
                }
            }
            if let Some(id) = &message.tool_call_id {
                view["tool_call_id"] = json!(id);
            }
            if let Some(name) = &message.name {
                view["name"] = json!(name);
            }
            out.push(view);
        }
        out
    }
}

/// A call's arguments as an object, as templates expect them (`arguments | tojson`); text
/// that is not JSON stays text.
fn arguments_value(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// An assistant message's text followed by its calls, one JSON object a line.
fn calls_as_text(message: &ChatMessage) -> String {
    let calls = message.tool_calls.iter().map(|call| {
        format!("{{\"name\": {}, \"arguments\": {}}}", json!(call.name), arguments_value(&call.arguments))
    });
    let mut lines: Vec<String> = Vec::new();
    if !message.content.is_empty() {
        lines.push(message.content.clone());
    }
    lines.extend(calls);
    lines.join("\n")
}

/// A tool result as labelled text, for templates with no tool role.
fn tool_result_text(message: &ChatMessage) -> String {
    let label = match (&message.name, &message.tool_call_id) {
        (Some(name), Some(id)) => format!("Result of the tool call {id} ({name}):"),
        (Some(name), None) => format!("Result of the tool {name}:"),
        (None, Some(id)) => format!("Result of the tool call {id}:"),
        (None, None) => "Result of a tool call:".to_owned(),
    };
    format!("{label}\n{}", message.content)
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
    use modelforge_core::ToolCall;

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

    /// Qwen2.5-Instruct's template (tools in the system prompt, calls in `<tool_call>` tags,
    /// results in `<tool_response>` tags inside a user turn).
    const QWEN25: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

    fn tool_conversation() -> Vec<ChatMessage> {
        let call = |id: &str, city: &str| ToolCall {
            id: id.into(),
            name: "weather".into(),
            arguments: format!("{{\"city\": \"{city}\"}}"),
        };
        vec![
            ChatMessage::user("Weather in Oslo and Rome?"),
            ChatMessage::assistant_with_calls("", vec![call("c1", "Oslo"), call("c2", "Rome")]),
            ChatMessage::tool(Some("c1".into()), Some("weather".into()), "rain, 9 C"),
            ChatMessage::tool(Some("c2".into()), None, "sun, 24 C"),
        ]
    }

    #[test]
    fn a_template_with_tool_support_renders_calls_and_results_its_way() {
        let t = ChatTemplate::new(Some(QWEN25), "", "<|im_end|>").unwrap();
        let tool = serde_json::json!({ "type": "function", "function": { "name": "weather" } });
        let out = t.render_with_tools(&tool_conversation(), &[tool], true).unwrap();
        let expected = "<|im_start|>user\nWeather in Oslo and Rome?<|im_end|>\n\
             <|im_start|>assistant\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\":\"Oslo\"}}\n</tool_call>\n\
             <tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\":\"Rome\"}}\n</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\nrain, 9 C\n</tool_response>\n<tool_response>\nsun, 24 C\n</tool_response><|im_end|>\n\
             <|im_start|>assistant\n";
        assert!(out.contains("<tools>\n{"), "{out}");
        assert!(out.ends_with(expected), "{out}");
    }

    #[test]
    fn a_template_without_tool_support_gets_labelled_text() {
        let t = ChatTemplate::new(Some(SMOLLM2), "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&tool_conversation(), true).unwrap();
        let expected = "<|im_start|>user\nWeather in Oslo and Rome?<|im_end|>\n\
             <|im_start|>assistant\n{\"name\": \"weather\", \"arguments\": {\"city\":\"Oslo\"}}\n\
             {\"name\": \"weather\", \"arguments\": {\"city\":\"Rome\"}}<|im_end|>\n\
             <|im_start|>user\nResult of the tool call c1 (weather):\nrain, 9 C\n\n\
             Result of the tool call c2:\nsun, 24 C<|im_end|>\n<|im_start|>assistant\n";
        assert!(out.ends_with(expected), "{out}");
        assert!(!out.contains("<|im_start|>tool"), "{out}");
    }

    #[test]
    fn a_broken_template_is_a_clear_error() {
        let err = ChatTemplate::new(Some("{% for x in %}"), "", "").unwrap_err();
        assert!(matches!(err, BackendError::Template { .. }));
    }
}
