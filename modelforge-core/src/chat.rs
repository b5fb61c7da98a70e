//! Chat messages and roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who wrote a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person chatting.
    User,
    /// The model.
    Assistant,
    /// The result of a tool (function) the model called, sent back by the client
    /// ([`ChatMessage::tool_call_id`] names the call). Only the OpenAI-compatible API makes
    /// these: stored conversations hold system, user and assistant messages only.
    Tool,
}

impl Role {
    /// The lowercase name used by chat templates and the OpenAI API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            other => Err(format!("unknown chat role `{other}` (expected system, user, assistant or tool)")),
        }
    }
}

/// A call of a tool (function) that an assistant message made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which the tool's result refers to.
    pub id: String,
    /// The function called.
    pub name: String,
    /// Its arguments, as the JSON text the model wrote.
    pub arguments: String,
}

/// One message of a conversation, as a chat template sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What was written (a tool's result for [`Role::Tool`]; may be empty for an assistant
    /// message that only calls tools).
    pub content: String,
    /// The tools an assistant message called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the id of the call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a [`Role::Tool`] message: the function that produced it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None, name: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// An assistant message that calls tools (`content` may be empty).
    pub fn assistant_with_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self { tool_calls, ..Self::assistant(content) }
    }

    /// The result of the tool call `call_id` (of the function `name`, when known).
    pub fn tool(call_id: Option<String>, name: Option<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: call_id, name, ..Self::new(Role::Tool, content) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_serialize_as_before() {
        let json = serde_json::to_string(&ChatMessage::user("hi")).unwrap();
        assert_eq!(json, r#"{"role":"user","content":"hi"}"#);
        let back: ChatMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ChatMessage::user("hi"));
    }

    #[test]
    fn tool_messages_round_trip() {
        let call = ToolCall { id: "c1".into(), name: "f".into(), arguments: "{}".into() };
        for message in [
            ChatMessage::assistant_with_calls("", vec![call]),
            ChatMessage::tool(Some("c1".into()), Some("f".into()), "42"),
        ] {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(serde_json::from_str::<ChatMessage>(&json).unwrap(), message);
        }
        assert_eq!("tool".parse::<Role>().unwrap(), Role::Tool);
    }
}
