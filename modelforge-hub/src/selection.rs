//! Which files of a repository make up a model: GGUF files grouped into models (a split set is
//! one), the default quantization, and the files of a safetensors model.

use std::collections::BTreeMap;

use modelforge_core::RepoFile;
use serde::Serialize;

use crate::split::parse_split_name;

/// The quantization chosen when a reference names none, as Ollama and llama-server do.
pub const DEFAULT_QUANTIZATION: &str = "Q4_K_M";

/// The order in which quantizations are preferred when a reference names none.
///
/// First the 4-bit family around [`DEFAULT_QUANTIZATION`] (the usual balance of size and
/// quality), then larger quantizations in increasing size (better quality for more memory),
/// then smaller ones in decreasing size (they lose quality fast), and full precision last
/// because it is four times the size. A model whose quantization is not in the list (or not
/// in its name) comes after all of these.
pub const QUANTIZATION_PREFERENCE: &[&str] = &[
    "Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL", "Q4_0", "Q4_1", "Q5_K_M", "Q5_K_S", "Q5_0", "Q5_1", "Q6_K",
    "Q8_0", "Q3_K_L", "Q3_K_M", "IQ3_M", "IQ3_S", "Q3_K_S", "IQ3_XS", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M",
    "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0", "BF16", "F16", "F32",
];

/// One GGUF model of a repository: a single file, or a complete split set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GgufModel {
    /// The quantization parsed from the file name.
    pub quantization: Option<String>,
    /// Its files, the first shard first.
    pub files: Vec<RepoFile>,
}

impl GgufModel {
    /// The file llama.cpp opens: the only one, or the first shard.
    pub fn first_file(&self) -> &str {
        &self.files[0].path
    }

    /// Total size in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Groups the GGUF files of a listing into models.
///
/// Shards `name-0000i-of-0000n.gguf` in one directory form one model when all `n` are present
/// (an incomplete set is left out). Multimodal projectors (`mmproj` files) are not models of
/// their own and are left out. The result is sorted by first file.
pub fn gguf_models(files: &[RepoFile]) -> Vec<GgufModel> {
    let mut singles = Vec::new();
    let mut sets: BTreeMap<(String, u32), Vec<(u32, &RepoFile)>> = BTreeMap::new();
    for file in files.iter().filter(|f| is_gguf(&f.path) && !is_projector(&f.path)) {
        let (dir, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
        match parse_split_name(name) {
            Some(split) => sets
                .entry((format!("{dir}/{}", split.stem), split.count))
                .or_default()
                .push((split.index, file)),
            None => {
                singles.push(GgufModel { quantization: file.quantization.clone(), files: vec![file.clone()] })
            }
        }
    }
    for ((stem, count), mut shards) in sets {
        shards.sort_by_key(|&(index, _)| index);
        shards.dedup_by_key(|&mut (index, _)| index);
        if shards.len() != count as usize {
            tracing::debug!(model = %stem, "leaving out an incomplete split GGUF set");
            continue;
        }
        let files: Vec<RepoFile> = shards.into_iter().map(|(_, f)| f.clone()).collect();
        singles.push(GgufModel { quantization: files[0].quantization.clone(), files });
    }
    singles.sort_by(|a, b| a.first_file().cmp(b.first_file()));
    singles
}

/// The model to use when a reference names no quantization: the first in
/// [`QUANTIZATION_PREFERENCE`] order; among equals, the shortest path (the plain variant
/// rather than e.g. an `-imat` one), then the first by name.
pub fn choose_default(models: &[GgufModel]) -> Option<&GgufModel> {
    let rank = |m: &GgufModel| {
        let preference = m
            .quantization
            .as_deref()
            .and_then(|q| QUANTIZATION_PREFERENCE.iter().position(|p| *p == q))
            .unwrap_or(QUANTIZATION_PREFERENCE.len());
        (preference, m.first_file().len(), m.first_file().to_owned())
    };
    models.iter().min_by_key(|m| rank(m))
}

/// The files a safetensors model needs from a listing: the configuration and tokenizer files
/// at the top level, the weight index, and the weights: those the index names when there is
/// an index, else every top-level `.safetensors` file. Empty when there is no `config.json`
/// or no weights.
///
/// `index` is the content of `model.safetensors.index.json`, when it was fetched.
pub fn safetensors_files(files: &[RepoFile], index: Option<&serde_json::Value>) -> Vec<RepoFile> {
    let top: Vec<&RepoFile> = files.iter().filter(|f| !f.path.contains('/')).collect();
    let indexed: Option<Vec<&str>> = index
        .and_then(|i| i.get("weight_map"))
        .and_then(|m| m.as_object())
        .map(|m| m.values().filter_map(|v| v.as_str()).collect());
    let is_weight = |path: &str| match &indexed {
        Some(names) => names.contains(&path),
        None => path.ends_with(".safetensors"),
    };
    let has_config = top.iter().any(|f| f.path == "config.json");
    if !has_config || !top.iter().any(|f| is_weight(&f.path)) {
        return Vec::new();
    }
    top.into_iter().filter(|f| is_weight(&f.path) || is_support_file(&f.path)).cloned().collect()
}

/// The index of a sharded safetensors model.
pub(crate) const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";

/// Configuration and tokenizer files that a safetensors model is loaded with.
fn is_support_file(path: &str) -> bool {
    matches!(
        path,
        "config.json"
            | "generation_config.json"
            | "tokenizer.json"
            | "tokenizer_config.json"
            | "tokenizer.model"
            | "special_tokens_map.json"
            | "added_tokens.json"
            | "vocab.json"
            | "vocab.txt"
            | "merges.txt"
            | "chat_template.jinja"
            | SAFETENSORS_INDEX
    )
}

pub(crate) fn is_gguf(path: &str) -> bool {
    path.len() > 5 && path[path.len() - 5..].eq_ignore_ascii_case(".gguf")
}

fn is_projector(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|name| name.to_ascii_lowercase().contains("mmproj"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_quantization;

    fn files(paths: &[&str]) -> Vec<RepoFile> {
        paths
            .iter()
            .map(|p| RepoFile {
                path: (*p).into(),
                size: 10,
                sha256: None,
                quantization: parse_quantization(p),
            })
            .collect()
    }

    fn default_of(paths: &[&str]) -> Option<String> {
        choose_default(&gguf_models(&files(paths))).map(|m| m.first_file().to_owned())
    }

    #[test]
    fn q4_k_m_wins_else_the_documented_order() {
        assert_eq!(default_of(&["m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-Q2_K.gguf"]).unwrap(), "m-Q4_K_M.gguf");
        assert_eq!(default_of(&["m-Q8_0.gguf", "m-Q3_K_M.gguf", "m-F16.gguf"]).unwrap(), "m-Q8_0.gguf");
        assert_eq!(default_of(&["m-F16.gguf", "m-Q2_K.gguf"]).unwrap(), "m-Q2_K.gguf");
        assert_eq!(default_of(&["m.gguf", "m-BF16.gguf"]).unwrap(), "m-BF16.gguf");
        assert_eq!(default_of(&["m-Q4_K_M-imat.gguf", "m-Q4_K_M.gguf"]).unwrap(), "m-Q4_K_M.gguf");
        assert_eq!(default_of(&["mmproj-m-Q4_K_M.gguf", "m.gguf"]).unwrap(), "m.gguf");
        assert_eq!(default_of(&["README.md", "model.safetensors"]), None);
    }

    #[test]
    fn a_split_set_is_one_model_and_an_incomplete_one_none() {
        let listing = files(&[
            "Q8_0/m-Q8_0-00002-of-00002.gguf",
            "Q8_0/m-Q8_0-00001-of-00002.gguf",
            "m-Q6_K-00001-of-00002.gguf",
            "m-Q2_K.gguf",
        ]);
        let models = gguf_models(&listing);
        assert_eq!(models.len(), 2, "{models:?}");
        let split = &models[0];
        assert_eq!(split.first_file(), "Q8_0/m-Q8_0-00001-of-00002.gguf");
        assert_eq!((split.files.len(), split.size()), (2, 20));
        assert_eq!(split.quantization.as_deref(), Some("Q8_0"));
    }

    #[test]
    fn safetensors_takes_the_indexed_shards_and_support_files() {
        let listing = files(&[
            "config.json",
            "tokenizer.json",
            "README.md",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "consolidated.safetensors",
            "onnx/model.safetensors",
            SAFETENSORS_INDEX,
        ]);
        let index = serde_json::json!({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}});
        let picked: Vec<String> =
            safetensors_files(&listing, Some(&index)).into_iter().map(|f| f.path).collect();
        assert_eq!(
            picked,
            [
                "config.json",
                "tokenizer.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                SAFETENSORS_INDEX
            ]
        );
        let without_index = safetensors_files(&listing, None);
        assert!(without_index.iter().any(|f| f.path == "consolidated.safetensors"));
        assert!(safetensors_files(&files(&["model.safetensors"]), None).is_empty(), "no config.json");
    }
}
