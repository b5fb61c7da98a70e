//! Quantization names parsed from model file names.
//!
//! A remote hub lists file names long before anything is downloaded, and a user picks a file by
//! its quantization (`Q4_K_M`, `Q8_0`, `IQ4_XS`, ...), so the name is the only source there.
//! Local GGUF files carry the authoritative value in `general.file_type`; callers prefer that
//! and fall back to this parser.

/// Quantizations recognised in file names, in canonical spelling.
const KNOWN: &[&str] = &[
    "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q4_0",
    "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS",
    "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_XS", "IQ4_NL", "TQ1_0", "TQ2_0", "F16", "BF16", "F32",
];

/// The longest known name, in tokens (`Q4_K_M` is three).
const MAX_TOKENS: usize = 3;

/// The quantization named in a model file name, in canonical uppercase spelling.
///
/// The name is split into tokens at `.`, `-`, `_`, whitespace and path separators, and a
/// quantization must consist of whole tokens, so `f16` inside `leaf16x` is not one. Its parts
/// may be joined by any separator (`q4-k-m` is `Q4_K_M`). When a name mentions several, the
/// first wins; at one position the longest wins (`Q4_K_M` over nothing shorter).
///
/// ```
/// use modelforge_hub::parse_quantization;
///
/// assert_eq!(parse_quantization("qwen2.5-0.5b-instruct-q4_k_m.gguf").as_deref(), Some("Q4_K_M"));
/// assert_eq!(parse_quantization("model-bf16-00001-of-00002.gguf").as_deref(), Some("BF16"));
/// assert_eq!(parse_quantization("leaf16x.gguf"), None);
/// ```
pub fn parse_quantization(file_name: &str) -> Option<String> {
    let tokens: Vec<&str> = file_name
        .split(|c: char| matches!(c, '.' | '-' | '_' | '/' | '\\') || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    (0..tokens.len()).find_map(|start| {
        (1..=MAX_TOKENS.min(tokens.len() - start))
            .rev()
            .find_map(|n| known(&tokens[start..start + n]))
            .map(str::to_owned)
    })
}

/// The canonical spelling of a dtype read from metadata: safetensors' `config.json` says
/// `bfloat16` where GGUF names and file names say `BF16`.
pub(crate) fn canonical_dtype(name: String) -> String {
    match name.to_ascii_uppercase().as_str() {
        "BFLOAT16" => "BF16".to_owned(),
        "FLOAT16" | "HALF" => "F16".to_owned(),
        "FLOAT32" | "FLOAT" => "F32".to_owned(),
        _ => name,
    }
}

/// The canonical name spelled by `tokens` joined with `_`, if any.
fn known(tokens: &[&str]) -> Option<&'static str> {
    KNOWN.iter().copied().find(|name| {
        let mut parts = name.split('_');
        tokens.iter().all(|t| parts.next().is_some_and(|p| p.eq_ignore_ascii_case(t)))
            && parts.next().is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_parses_as_itself_in_either_case() {
        for name in KNOWN {
            assert_eq!(parse_quantization(&format!("m-{name}.gguf")).as_deref(), Some(*name));
            let lower = name.to_lowercase();
            assert_eq!(parse_quantization(&format!("m.{lower}.gguf")).as_deref(), Some(*name));
        }
    }

    #[test]
    fn torch_dtypes_take_the_gguf_spelling() {
        assert_eq!(canonical_dtype("BFLOAT16".into()), "BF16");
        assert_eq!(canonical_dtype("float16".into()), "F16");
        assert_eq!(canonical_dtype("Q4_K_M".into()), "Q4_K_M");
    }

    #[test]
    fn a_token_prefix_of_a_longer_name_is_not_a_match() {
        // `Q4_K` alone is not a canonical name; `Q4_K_M` needs all three tokens.
        assert_eq!(parse_quantization("m-Q4_K.gguf"), None);
    }
}
