//! JSON Schema to llama.cpp grammar (GBNF), for structured output and tool calls.
//!
//! A small model asked for JSON writes almost-JSON; a grammar makes every sampled token keep
//! the output valid. [`schema_grammar`] turns the schema subset that OpenAI clients send
//! (`response_format.json_schema`, function `parameters`) into a grammar whose start rule is
//! `root`; [`any_object_grammar`] is OpenAI's `json_object` mode.
//!
//! Supported: `type` (one or a list), `properties` with `required` (optional properties may be
//! left out; the required ones come first, in the order `required` lists them, then the
//! optional ones by name), `items`,
//! `minItems`/`maxItems`, `minLength`/`maxLength`, `enum`, `const`, `anyOf`/`oneOf`,
//! `allOf` with one member, `$ref` into `$defs`/`definitions` (recursion included), and `{}` or
//! `true` for any value. Keywords that only narrow a value further (`pattern`, `format`,
//! `minimum`, ...) are not enforced. A schema that is not a schema (an unknown type, a
//! `required` that is not a list of names, a `$ref` to nothing) is an error.
//!
//! ```
//! use modelforge_core::json_schema::schema_grammar;
//!
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": { "city": { "type": "string" }, "sunny": { "type": "boolean" } },
//!     "required": ["city", "sunny"],
//! });
//! let grammar = schema_grammar(&schema).unwrap();
//! assert!(grammar.starts_with("root ::= "));
//! assert!(schema_grammar(&serde_json::json!({ "type": "color" })).is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// Why a schema cannot become a grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON schema at {path}: {reason}")]
pub struct SchemaError {
    /// Where in the schema, as a JSON pointer (`#/properties/city`).
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

/// The rules every grammar shares: whitespace, JSON primitives and any JSON value.
const PRIMITIVES: &str = r#"ws ::= | " " | "\n" [ \t]{0,20}
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\""
integer ::= "-"? ([0-9] | [1-9] [0-9]{0,15})
number ::= integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
"#;

/// A grammar for any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
pub fn any_object_grammar() -> String {
    format!("root ::= object\n{PRIMITIVES}")
}

/// A grammar whose every sentence is a JSON text valid against `schema` (within the subset
/// described in the [module docs](self)).
pub fn schema_grammar(schema: &Value) -> Result<String, SchemaError> {
    let mut converter = Converter { root: schema, refs: BTreeMap::new(), pending: Vec::new() };
    let root = converter.expr(schema, "#")?;
    let mut out = format!("root ::= {root}\n");
    while let Some((name, pointer)) = converter.pending.pop() {
        let target = converter.resolve(&pointer)?;
        let body = converter.expr(target, &pointer)?;
        let _ = writeln!(out, "{name} ::= {body}");
    }
    out.push_str(PRIMITIVES);
    Ok(out)
}

struct Converter<'a> {
    root: &'a Value,
    /// `$ref` pointer to rule name.
    refs: BTreeMap<String, String>,
    /// Rules named but not yet written: (name, pointer).
    pending: Vec<(String, String)>,
}

fn error(path: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError { path: path.to_owned(), reason: reason.into() }
}

/// `text` as a GBNF string literal.
fn literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `( a | b | c )`.
fn alternatives(options: Vec<String>) -> String {
    format!("( {} )", options.join(" | "))
}

/// `{m,n}` for repeating something between `min` and `max` times.
fn repeat(min: u64, max: Option<u64>) -> String {
    match max {
        Some(max) => format!("{{{min},{max}}}"),
        None => format!("{{{min},}}"),
    }
}

impl<'a> Converter<'a> {
    fn expr(&mut self, schema: &'a Value, path: &str) -> Result<String, SchemaError> {
        let map = match schema {
            Value::Bool(true) => return Ok("value".into()),
            Value::Bool(false) => return Err(error(path, "`false` admits no value")),
            Value::Object(map) => map,
            _ => return Err(error(path, "a schema must be an object or a boolean")),
        };
        if let Some(reference) = map.get("$ref") {
            let pointer = reference.as_str().ok_or_else(|| error(path, "`$ref` must be a string"))?;
            return self.reference(pointer, path);
        }
        if let Some(value) = map.get("const") {
            return Ok(literal(&value.to_string()));
        }
        if let Some(values) = map.get("enum") {
            let values = values.as_array().filter(|v| !v.is_empty());
            let values = values.ok_or_else(|| error(path, "`enum` must be a non-empty list"))?;
            return Ok(alternatives(values.iter().map(|v| literal(&v.to_string())).collect()));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(options) = map.get(key) {
                let options = options.as_array().filter(|v| !v.is_empty());
                let options =
                    options.ok_or_else(|| error(path, format!("`{key}` must be a non-empty list")))?;
                let exprs = options
                    .iter()
                    .enumerate()
                    .map(|(i, option)| self.expr(option, &format!("{path}/{key}/{i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(alternatives(exprs));
            }
        }
        if let Some(all) = map.get("allOf") {
            return match all.as_array().map(Vec::as_slice) {
                Some([only]) => self.expr(only, &format!("{path}/allOf/0")),
                _ => Err(error(path, "`allOf` is supported with exactly one member")),
            };
        }
        match map.get("type") {
            None if map.contains_key("properties") => self.object(map, path),
            None if map.contains_key("items") => self.array(map, path),
            None => Ok("value".into()),
            Some(Value::String(kind)) => self.typed(kind, map, path),
            Some(Value::Array(kinds)) if !kinds.is_empty() => {
                let exprs = kinds
                    .iter()
                    .map(|kind| match kind {
                        Value::String(kind) => self.typed(kind, map, path),
                        _ => Err(error(path, "`type` lists must hold type names")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(alternatives(exprs))
            }
            Some(_) => Err(error(path, "`type` must be a type name or a non-empty list of them")),
        }
    }

    fn typed(
        &mut self,
        kind: &str,
        map: &'a serde_json::Map<String, Value>,
        path: &str,
    ) -> Result<String, SchemaError> {
        Ok(match kind {
            "object" => self.object(map, path)?,
            "array" => self.array(map, path)?,
            "string" => {
                let min = self.count(map, "minLength", path)?;
                let max = self.count(map, "maxLength", path)?;
                match (min, max) {
                    (None, None) => "string".into(),
                    (min, max) => format!("\"\\\"\" char{} \"\\\"\"", repeat(min.unwrap_or(0), max)),
                }
            }
            "integer" | "number" | "boolean" | "null" => kind.into(),
            other => return Err(error(path, format!("unknown type `{other}`"))),
        })
    }

    fn count(
        &self,
        map: &serde_json::Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<u64>, SchemaError> {
        match map.get(key) {
            None => Ok(None),
            Some(v) => {
                v.as_u64().map(Some).ok_or_else(|| error(path, format!("`{key}` must be a whole number")))
            }
        }
    }

    fn object(&mut self, map: &'a serde_json::Map<String, Value>, path: &str) -> Result<String, SchemaError> {
        let Some(properties) = map.get("properties") else { return Ok("object".into()) };
        let properties =
            properties.as_object().ok_or_else(|| error(path, "`properties` must be an object"))?;
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().ok_or_else(|| error(path, "`required` must list property names")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(error(path, "`required` must be a list of property names")),
        };
        if let Some(missing) = required.iter().find(|name| !properties.contains_key(**name)) {
            return Err(error(path, format!("`{missing}` is required but not among the properties")));
        }
        // Required properties in the order `required` lists them (a call's `name` before its
        // `arguments`, so a stream can name the call first), then the optional ones.
        let mut order: Vec<&str> = Vec::new();
        for name in required.iter().copied().chain(properties.keys().map(String::as_str)) {
            if !order.contains(&name) {
                order.push(name);
            }
        }
        let (mut needed, mut optional) = (Vec::new(), Vec::new());
        for name in order {
            let value = self.expr(&properties[name], &format!("{path}/properties/{name}"))?;
            let pair = format!("{} ws \":\" ws {value}", literal(&Value::from(name).to_string()));
            if required.contains(&name) { needed.push(pair) } else { optional.push(pair) }
        }
        let comma = " ws \",\" ws ";
        let body = if needed.is_empty() {
            if optional.is_empty() {
                String::new()
            } else {
                // The first property present decides where the commas go.
                let starts = (0..optional.len())
                    .map(|i| {
                        let mut s = optional[i].clone();
                        for later in &optional[i + 1..] {
                            let _ = write!(s, " ({comma}{later})?");
                        }
                        s
                    })
                    .collect();
                format!("{}?", alternatives(starts))
            }
        } else {
            let mut s = needed.join(comma);
            for later in &optional {
                let _ = write!(s, " ({comma}{later})?");
            }
            s
        };
        Ok(format!("( \"{{\" ws {body} ws \"}}\" )"))
    }

    fn array(&mut self, map: &'a serde_json::Map<String, Value>, path: &str) -> Result<String, SchemaError> {
        let item = match map.get("items") {
            None => "value".to_owned(),
            Some(items) => self.expr(items, &format!("{path}/items"))?,
        };
        let min = self.count(map, "minItems", path)?.unwrap_or(0);
        let max = self.count(map, "maxItems", path)?;
        if max.is_some_and(|max| max < min) {
            return Err(error(path, "`maxItems` is smaller than `minItems`"));
        }
        let more = |at_least: u64| {
            let bound = max.map(|m| m.saturating_sub(1));
            format!("( ws \",\" ws {item} ){}", repeat(at_least, bound))
        };
        Ok(match (min, max) {
            (_, Some(0)) => "( \"[\" ws \"]\" )".into(),
            (0, _) => format!("( \"[\" ws ( {item} {} )? ws \"]\" )", more(0)),
            (min, _) => format!("( \"[\" ws {item} {} ws \"]\" )", more(min - 1)),
        })
    }

    fn reference(&mut self, pointer: &str, path: &str) -> Result<String, SchemaError> {
        if let Some(name) = self.refs.get(pointer) {
            return Ok(name.clone());
        }
        self.resolve(pointer).map_err(|e| error(path, e.reason))?;
        let name = format!("ref{}", self.refs.len() + 1);
        self.refs.insert(pointer.to_owned(), name.clone());
        self.pending.push((name.clone(), pointer.to_owned()));
        Ok(name)
    }

    fn resolve(&self, pointer: &str) -> Result<&'a Value, SchemaError> {
        let inner = pointer
            .strip_prefix('#')
            .ok_or_else(|| error(pointer, "only `$ref`s within the schema (`#/...`) are supported"))?;
        self.root.pointer(inner).ok_or_else(|| error(pointer, "the `$ref` points to nothing"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn grammar(schema: Value) -> String {
        schema_grammar(&schema).unwrap()
    }

    #[test]
    fn an_object_lists_required_properties_then_optional_ones() {
        let g = grammar(json!({
            "type": "object",
            "properties": { "note": { "type": "string" }, "city": { "type": "string" }, "n": { "type": "integer" } },
            "required": ["city"],
        }));
        let root = g.lines().next().unwrap();
        let city = root.find("city").unwrap();
        let n = root.find("\\\"n\\\"").unwrap();
        let note = root.find("note").unwrap();
        assert!(city < n && city < note, "{root}");
        assert!(root.contains(")?"), "optional properties may be left out: {root}");
    }

    #[test]
    fn required_properties_come_in_the_order_required_lists_them() {
        let g = grammar(json!({
            "type": "object",
            "properties": { "arguments": { "type": "object" }, "name": { "const": "f" }, "extra": {} },
            "required": ["name", "arguments"],
        }));
        let root = g.lines().next().unwrap();
        let at =
            |key: &str| root.find(&format!("\\\"{key}\\\"")).unwrap_or_else(|| panic!("{key} in {root}"));
        assert!(at("name") < at("arguments") && at("arguments") < at("extra"), "{root}");
    }

    #[test]
    fn enums_consts_and_type_lists_become_alternatives() {
        let g = grammar(json!({ "enum": ["red", 3, null] }));
        assert!(g.starts_with(r#"root ::= ( "\"red\"" | "3" | "null" )"#), "{g}");
        let g = grammar(json!({ "const": "x" }));
        assert!(g.starts_with(r#"root ::= "\"x\"""#), "{g}");
        let g = grammar(json!({ "type": ["string", "null"] }));
        assert!(g.starts_with("root ::= ( string | null )"), "{g}");
    }

    #[test]
    fn arrays_respect_their_bounds() {
        let g =
            grammar(json!({ "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 3 }));
        assert!(g.contains(r#"( ws "," ws number ){1,2}"#), "{g}");
        let g = grammar(json!({ "type": "array", "maxItems": 0 }));
        assert!(g.starts_with(r#"root ::= ( "[" ws "]" )"#), "{g}");
    }

    #[test]
    fn references_become_rules_and_may_recurse() {
        let g = grammar(json!({
            "$defs": { "node": { "type": "object", "properties": {
                "children": { "type": "array", "items": { "$ref": "#/$defs/node" } } } } },
            "$ref": "#/$defs/node",
        }));
        assert!(g.starts_with("root ::= ref1\n"), "{g}");
        assert_eq!(g.matches("ref1 ::=").count(), 1, "{g}");
    }

    #[test]
    fn broken_schemas_are_errors_that_say_where() {
        for (schema, at) in [
            (json!({ "type": "colour" }), "#"),
            (json!({ "type": "object", "properties": { "a": { "type": 3 } } }), "#/properties/a"),
            (json!({ "type": "object", "properties": {}, "required": ["a"] }), "#"),
            (json!({ "type": "object", "properties": {}, "required": "a" }), "#"),
            (json!({ "$ref": "#/$defs/missing" }), "#"),
            (json!({ "enum": [] }), "#"),
            (json!({ "type": "array", "minItems": 3, "maxItems": 1 }), "#"),
            (json!(7), "#"),
        ] {
            let err = schema_grammar(&schema).unwrap_err();
            assert_eq!(err.path, at, "{schema}: {err}");
        }
    }

    #[test]
    fn the_object_mode_grammar_starts_at_an_object() {
        assert!(any_object_grammar().starts_with("root ::= object\n"));
    }
}
