//! Tools (function calling), as text-generation-inference's `tool_grammar.rs` does it: the
//! functions a call may use become one JSON schema (one alternative per function), and the
//! schema becomes a grammar, so a forced call (`tool_choice` "required" or a named function)
//! is always a valid call even from a small model. With "auto" the model is free, and its
//! answer is read as a call when it is one.

use modelforge_core::json_schema::schema_grammar;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::ApiError;

/// One entry of `tools`.
#[derive(Clone, Debug, Deserialize)]
pub struct Tool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: Function,
}

/// A function the model may call.
#[derive(Clone, Debug, Deserialize)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default)]
    pub description: Option<String>,
    /// A JSON schema of its arguments.
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// What `tool_choice` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// No tools: plain text.
    None,
    /// The model decides.
    Auto,
    /// Some function must be called.
    Required,
    /// This function must be called.
    Named(String),
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_param(param)
}

/// Checks `tools` and reads `tool_choice` (OpenAI's default: "auto" with tools, else "none").
pub fn choice(tools: &[Tool], raw: Option<&Value>) -> Result<Choice, ApiError> {
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return Err(invalid(
                &format!("tools[{i}].type"),
                format!("tools of type `{}` are not supported: only `function`", tool.kind),
            ));
        }
        if tool.function.name.is_empty() {
            return Err(invalid(&format!("tools[{i}].function.name"), "a function needs a name"));
        }
        if let Some(parameters) = &tool.function.parameters {
            schema_grammar(parameters)
                .map_err(|e| invalid(&format!("tools[{i}].function.parameters"), e.to_string()))?;
        }
    }
    let choice = match raw {
        None | Some(Value::Null) if tools.is_empty() => Choice::None,
        None | Some(Value::Null) => Choice::Auto,
        Some(Value::String(s)) if s == "none" => Choice::None,
        Some(Value::String(s)) if s == "auto" => Choice::Auto,
        Some(Value::String(s)) if s == "required" => Choice::Required,
        Some(named) => match named.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if tools.iter().any(|t| t.function.name == name) => Choice::Named(name.to_owned()),
            Some(name) => {
                return Err(invalid(
                    "tool_choice",
                    format!("tool_choice names `{name}`, which is not among the tools"),
                ));
            }
            None => {
                return Err(invalid(
                    "tool_choice",
                    "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                ));
            }
        },
    };
    if tools.is_empty() && choice != Choice::None {
        return Err(invalid("tool_choice", "tool_choice needs `tools`"));
    }
    Ok(choice)
}

fn call_schema(function: &Function) -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "const": function.name },
            "arguments": function.parameters.clone().unwrap_or_else(|| json!({ "type": "object" })),
        },
        "required": ["name", "arguments"],
    })
}

/// The grammar of a forced call: `{"name": ..., "arguments": {...}}` for one of the functions
/// `choice` allows; `None` unless a call is forced.
pub fn forced_call_grammar(tools: &[Tool], choice: &Choice) -> Result<Option<String>, ApiError> {
    let allowed: Vec<Value> = match choice {
        Choice::None | Choice::Auto => return Ok(None),
        Choice::Required => tools.iter().map(|t| call_schema(&t.function)).collect(),
        Choice::Named(name) => {
            tools.iter().filter(|t| &t.function.name == name).map(|t| call_schema(&t.function)).collect()
        }
    };
    let schema = json!({ "anyOf": allowed });
    schema_grammar(&schema).map(Some).map_err(|e| invalid("tools", e.to_string()))
}

/// The tools as OpenAI-style JSON, for templates that render them.
pub fn as_json(tools: &[Tool]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| {
            json!({ "type": "function", "function": {
                "name": t.function.name,
                "description": t.function.description,
                "parameters": t.function.parameters,
            } })
        })
        .collect()
}

/// A system message describing the tools, for templates that have no place for them.
pub fn describe(tools: &[Tool]) -> String {
    let list: Vec<String> = as_json(tools).iter().map(|t| t["function"].to_string()).collect();
    format!(
        "You can call these functions:\n{}\nTo call one, answer with only a JSON object: {{\"name\": <function name>, \"arguments\": <its arguments>}}.",
        list.join("\n")
    )
}

/// A call read from the model's answer: `{"name", "arguments"}` naming one of the tools,
/// bare or inside `<tool_call>` tags. Returns the name and the arguments as a JSON string.
pub fn parse_call(text: &str, tools: &[Tool]) -> Option<(String, String)> {
    let text = text.trim();
    let text = text
        .strip_prefix("<tool_call>")
        .map_or(text, |t| t.trim_end().trim_end_matches("</tool_call>"))
        .trim();
    let value: Value = serde_json::from_str(text).ok()?;
    let name = value.get("name")?.as_str()?;
    if !tools.iter().any(|t| t.function.name == name) {
        return None;
    }
    let arguments = match value.get("arguments").or_else(|| value.get("parameters"))? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some((name.to_owned(), arguments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<Tool> {
        serde_json::from_value(json!([
            { "type": "function", "function": { "name": "weather", "parameters": {
                "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } },
            { "type": "function", "function": { "name": "time" } },
        ]))
        .unwrap()
    }

    #[test]
    fn tool_choice_is_read_and_checked() {
        let tools = tools();
        assert_eq!(choice(&tools, None).unwrap(), Choice::Auto);
        assert_eq!(choice(&[], None).unwrap(), Choice::None);
        assert_eq!(choice(&tools, Some(&json!("required"))).unwrap(), Choice::Required);
        let named = json!({ "type": "function", "function": { "name": "time" } });
        assert_eq!(choice(&tools, Some(&named)).unwrap(), Choice::Named("time".into()));
        let unknown = json!({ "type": "function", "function": { "name": "nope" } });
        assert_eq!(choice(&tools, Some(&unknown)).unwrap_err().param.as_deref(), Some("tool_choice"));
        assert!(choice(&[], Some(&json!("required"))).is_err());
        let bad: Vec<Tool> = serde_json::from_value(json!([{ "type": "function", "function": {
            "name": "f", "parameters": { "type": "thing" } } }]))
        .unwrap();
        assert_eq!(choice(&bad, None).unwrap_err().param.as_deref(), Some("tools[0].function.parameters"));
    }

    #[test]
    fn a_forced_call_has_a_grammar_naming_only_the_allowed_functions() {
        let tools = tools();
        let g = forced_call_grammar(&tools, &Choice::Named("weather".into())).unwrap().unwrap();
        assert!(g.contains("weather") && !g.contains("time"), "{g}");
        let g = forced_call_grammar(&tools, &Choice::Required).unwrap().unwrap();
        assert!(g.contains("weather") && g.contains("time"), "{g}");
        assert_eq!(forced_call_grammar(&tools, &Choice::Auto).unwrap(), None);
    }

    #[test]
    fn calls_are_read_bare_or_tagged() {
        let tools = tools();
        let call = parse_call(" {\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}} ", &tools);
        assert_eq!(call, Some(("weather".into(), "{\"city\":\"Oslo\"}".into())));
        let tagged = "<tool_call>\n{\"name\": \"time\", \"arguments\": {}}\n</tool_call>";
        assert_eq!(parse_call(tagged, &tools), Some(("time".into(), "{}".into())));
        assert_eq!(parse_call("{\"name\": \"other\", \"arguments\": {}}", &tools), None);
        assert_eq!(parse_call("It is sunny.", &tools), None);
    }
}
