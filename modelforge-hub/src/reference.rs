//! The model reference grammar: how a user names a model on the command line, in a config file
//! or in an API call.

use std::fmt;
use std::path::{Path, PathBuf};

use modelforge_core::HubError;

use crate::quant::parse_quantization;

/// A model named by a user.
///
/// | Written as | Means |
/// | --- | --- |
/// | `org/repo` | the repository's default model: its preferred GGUF quantization (see [`QUANTIZATION_PREFERENCE`](crate::QUANTIZATION_PREFERENCE)), else its safetensors weights with config and tokenizer |
/// | `org/repo:Q8_0` | the GGUF file (or split set) of that quantization; any case and separator (`q8-0`); `:latest` is the default |
/// | `org/repo/path/to/file.gguf` | that file; a shard of a split GGUF brings its whole set |
/// | `./model.gguf`, `/abs/dir`, an existing path | a file or safetensors directory on disk |
///
/// `hf.co/` and `https://huggingface.co/` prefixes are accepted, as pasted from a browser or
/// written for Ollama.
///
/// ```
/// use modelforge_hub::{ModelRef, Selector};
///
/// let r = ModelRef::parse("hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m")?;
/// assert_eq!(r, ModelRef::Hub {
///     repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF".into(),
///     selector: Selector::Quantization("Q4_K_M".into()),
/// });
/// assert_eq!(r.to_string(), "Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M");
/// assert!(ModelRef::parse("org/repo:Q9_Z").is_err());
/// # Ok::<(), modelforge_core::HubError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    /// A file or directory on local disk.
    Local(PathBuf),
    /// A repository on the hub, and what to take from it.
    Hub {
        /// `org/name`.
        repo: String,
        /// Which model of the repository.
        selector: Selector,
    },
}

/// Which model of a repository a [`ModelRef`] means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The repository's default model.
    Default,
    /// The GGUF model of this quantization, in canonical spelling (`Q4_K_M`).
    Quantization(String),
    /// One file, by its path in the repository.
    File(String),
}

const PREFIXES: &[&str] =
    &["https://huggingface.co/", "http://huggingface.co/", "https://hf.co/", "huggingface.co/", "hf.co/"];

impl ModelRef {
    /// Parses a reference. An existing path is always local; so is anything that starts like a
    /// path (`/`, `./`, `../`, `~/`), existing or not, so a typo in a path is reported as a
    /// missing file rather than sent to the network.
    pub fn parse(reference: &str) -> Result<Self, HubError> {
        let trimmed = reference.trim();
        let invalid = |reason: &str| HubError::InvalidReference {
            reference: reference.to_owned(),
            reason: reason.to_owned(),
        };
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let stripped = PREFIXES.iter().find_map(|p| trimmed.strip_prefix(p));
        if stripped.is_none() && looks_local(trimmed) {
            return Ok(ModelRef::Local(expand_home(trimmed)));
        }
        let rest = stripped.unwrap_or(trimmed).trim_end_matches('/');
        let mut segments = rest.splitn(3, '/');
        let (org, name_tag, file) = (segments.next(), segments.next(), segments.next());
        let (Some(org), Some(name_tag)) = (org, name_tag) else {
            return Err(invalid(
                "expected `org/repo`, `org/repo:QUANT`, `org/repo/path/file.gguf` or the path of a file",
            ));
        };
        let (name, tag) = match (file, name_tag.split_once(':')) {
            (None, Some((name, tag))) => (name, Some(tag)),
            _ => (name_tag, None),
        };
        for part in [org, name] {
            check_name(part).map_err(|why| invalid(&why))?;
        }
        let repo = format!("{org}/{name}");
        let selector = match (file, tag) {
            (Some(file), _) => Selector::File(check_file(file).map_err(|why| invalid(&why))?),
            (None, None) => Selector::Default,
            (None, Some(tag)) if tag.eq_ignore_ascii_case("latest") => Selector::Default,
            (None, Some(tag)) => Selector::Quantization(quantization_tag(tag).ok_or_else(|| {
                invalid(&format!(
                    "`{tag}` is not a quantization (expected e.g. Q4_K_M, Q8_0, IQ4_XS, F16, BF16)"
                ))
            })?),
        };
        Ok(ModelRef::Hub { repo, selector })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Local(path) => write!(f, "{}", path.display()),
            ModelRef::Hub { repo, selector: Selector::Default } => write!(f, "{repo}"),
            ModelRef::Hub { repo, selector: Selector::Quantization(q) } => write!(f, "{repo}:{q}"),
            ModelRef::Hub { repo, selector: Selector::File(file) } => write!(f, "{repo}/{file}"),
        }
    }
}

fn looks_local(s: &str) -> bool {
    Path::new(s).exists()
        || s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with("~/")
        || s.starts_with('\\')
        || s.get(1..3) == Some(":\\")
}

fn expand_home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(s),
    }
}

/// The Hub's rule for user and repository names.
fn check_name(part: &str) -> Result<(), String> {
    let ok_chars = part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if part.is_empty() || part.len() > 96 || !ok_chars || part.contains("--") || part.contains("..") {
        return Err(format!(
            "`{part}` is not a valid user or repository name (letters, digits, `-`, `_`, `.`; no `--` or `..`)"
        ));
    }
    Ok(())
}

fn check_file(file: &str) -> Result<String, String> {
    if file.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(format!("`{file}` is not a file path inside a repository"));
    }
    Ok(file.to_owned())
}

/// The canonical quantization a tag spells, if the whole tag is one.
fn quantization_tag(tag: &str) -> Option<String> {
    let canonical = parse_quantization(tag)?;
    let normalized: String = tag.chars().map(|c| if c == '-' || c == '.' { '_' } else { c }).collect();
    normalized.eq_ignore_ascii_case(&canonical).then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(repo: &str, selector: Selector) -> ModelRef {
        ModelRef::Hub { repo: repo.into(), selector }
    }

    #[test]
    fn the_forms_parse() {
        let q = |s: &str| Selector::Quantization(s.into());
        let cases = [
            ("org/repo", hub("org/repo", Selector::Default)),
            ("org/repo:latest", hub("org/repo", Selector::Default)),
            ("org/repo:Q8_0", hub("org/repo", q("Q8_0"))),
            ("org/repo:iq4-xs", hub("org/repo", q("IQ4_XS"))),
            ("https://huggingface.co/org/repo/", hub("org/repo", Selector::Default)),
            ("org/repo/sub/dir/m-Q4_0.gguf", hub("org/repo", Selector::File("sub/dir/m-Q4_0.gguf".into()))),
            ("/nowhere/x.gguf", ModelRef::Local("/nowhere/x.gguf".into())),
            ("./x.gguf", ModelRef::Local("./x.gguf".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(ModelRef::parse(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn bad_references_say_why() {
        for (text, why) in [
            ("", "empty"),
            ("justaname", "expected `org/repo`"),
            ("org/re po", "not a valid"),
            ("org/a--b", "not a valid"),
            ("org/repo:Q9_Z", "not a quantization"),
            ("org/repo:Q4_K_M_X", "not a quantization"),
            ("org/repo/../x", "not a file path"),
        ] {
            let err = ModelRef::parse(text).unwrap_err();
            assert!(matches!(err, HubError::InvalidReference { .. }), "{text}: {err:?}");
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["org/repo", "org/repo:Q4_K_M", "org/repo/a/b.gguf"] {
            assert_eq!(ModelRef::parse(text).unwrap().to_string(), text);
        }
    }
}
