//! `LocalCatalog` over a directory of model files written by the tests.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{FILE_TYPE_Q4_1, capture_warnings, tiny_gguf, tiny_safetensors, write};
use modelforge_core::{CancelToken, HubError, ModelFileError, ModelFormat, ModelHub, Progress};
use modelforge_hub::LocalCatalog;
use tempfile::TempDir;

/// A models directory with a bit of everything:
///
/// - `nested/deeper/SmolLM2-135M-Instruct.Q8_0.gguf`: valid, metadata says Q4_1;
/// - `weights.bin`: a valid GGUF with another extension;
/// - `nometa-Q5_K_M.gguf`: valid, no `general.file_type`, so Q5_K_M from its name;
/// - `fake.gguf`: text; `broken.gguf`: a truncated GGUF;
/// - `st-model/`: config.json, two safetensors shards, tokenizer.json;
/// - `big-Q4_0-0000{1,2}-of-00002.gguf`: a split GGUF; `half-00001-of-00002.gguf`: half of one;
/// - `.hidden/secret.gguf`: hidden.
fn models_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gguf = tiny_gguf(Some(FILE_TYPE_Q4_1));
    write(root, "nested/deeper/SmolLM2-135M-Instruct.Q8_0.gguf", &gguf);
    write(root, "weights.bin", &gguf);
    write(root, "nometa-Q5_K_M.gguf", &tiny_gguf(None));
    write(root, "fake.gguf", b"I am a text file with a misleading name.\n");
    write(root, "broken.gguf", &gguf[..gguf.len() - 10]);
    write(root, "st-model/config.json", br#"{"model_type":"llama","torch_dtype":"bfloat16"}"#);
    write(root, "st-model/model-00001-of-00002.safetensors", &tiny_safetensors());
    write(root, "st-model/model-00002-of-00002.safetensors", &tiny_safetensors());
    write(root, "st-model/tokenizer.json", b"{}");
    write(root, "big-Q4_0-00001-of-00002.gguf", &tiny_gguf(None));
    write(root, "big-Q4_0-00002-of-00002.gguf", &tiny_gguf(None));
    write(root, "half-00001-of-00002.gguf", &gguf);
    write(root, ".hidden/secret.gguf", &gguf);
    dir
}

fn gguf_len() -> u64 {
    tiny_gguf(Some(FILE_TYPE_Q4_1)).len() as u64
}

#[test]
fn cached_lists_each_usable_model_once_sorted_by_name() {
    let dir = models_dir();
    let models = LocalCatalog::new(dir.path()).cached().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["big-Q4_0", "nested/deeper/SmolLM2-135M-Instruct.Q8_0", "nometa-Q5_K_M", "st-model", "weights.bin"]
    );

    let smol = &models[1];
    assert_eq!(smol.format, ModelFormat::Gguf);
    assert_eq!(smol.quantization.as_deref(), Some("Q4_1"), "metadata wins over the file name");
    assert_eq!(smol.size_bytes, gguf_len());
    assert_eq!(smol.path, dir.path().join("nested/deeper/SmolLM2-135M-Instruct.Q8_0.gguf"));

    assert_eq!(models[2].quantization.as_deref(), Some("Q5_K_M"), "no metadata: from the file name");
    assert_eq!(models[4].quantization.as_deref(), Some("Q4_1"));
    assert_eq!(models[4].format, ModelFormat::Gguf);
}

#[test]
fn a_safetensors_directory_is_one_model_with_the_size_of_its_shards() {
    let dir = models_dir();
    let models = LocalCatalog::new(dir.path()).cached().unwrap();
    let st = models.iter().find(|m| m.name == "st-model").unwrap();
    assert_eq!(st.format, ModelFormat::Safetensors);
    assert_eq!(st.path, dir.path().join("st-model"));
    assert_eq!(st.size_bytes, 2 * tiny_safetensors().len() as u64);
    assert_eq!(st.quantization.as_deref(), Some("BF16"));
    assert!(!models.iter().any(|m| m.name.starts_with("st-model/")), "shards are not models: {models:?}");
}

#[test]
fn a_split_gguf_is_one_model_reached_through_its_first_shard() {
    let dir = models_dir();
    let models = LocalCatalog::new(dir.path()).cached().unwrap();
    let big = models.iter().find(|m| m.name == "big-Q4_0").unwrap();
    assert_eq!(big.path, dir.path().join("big-Q4_0-00001-of-00002.gguf"));
    assert_eq!(big.size_bytes, 2 * tiny_gguf(None).len() as u64);
    assert_eq!(big.quantization.as_deref(), Some("Q4_0"));
}

#[test]
fn broken_files_are_skipped_with_a_warning_naming_them() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    let (models, warnings) = capture_warnings(|| catalog.cached());
    let models = models.unwrap();
    assert!(!models.iter().any(|m| m.name.contains("broken") || m.name.contains("fake")));
    assert!(!models.iter().any(|m| m.name.contains("half") || m.name.contains("secret")));

    let broken: Vec<&String> = warnings.iter().filter(|w| w.contains("broken.gguf")).collect();
    assert_eq!(broken.len(), 1, "{warnings:#?}");
    assert!(broken[0].contains("truncated"), "the reason is given: {}", broken[0]);
    assert!(warnings.iter().any(|w| w.contains("half") && w.contains("2 valid shards")), "{warnings:#?}");
    assert!(!warnings.iter().any(|w| w.contains("fake.gguf")), "a text file is simply not a model");
}

#[test]
fn a_missing_models_directory_is_an_empty_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = LocalCatalog::new(dir.path().join("not-yet"));
    assert_eq!(catalog.models_dir(), dir.path().join("not-yet"));
    assert!(catalog.cached().unwrap().is_empty());
    let err = catalog.resolve("llama").unwrap_err();
    assert!(matches!(err, HubError::NotFound { what: "model", .. }), "{err:?}");
    assert!(err.to_string().contains("holds no models yet"), "{err}");
}

#[test]
fn the_scan_is_bounded_in_depth() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/b/c/d/e/f/six.gguf", &tiny_gguf(None));
    write(dir.path(), "a/b/c/d/e/f/g/seven.gguf", &tiny_gguf(None));
    let names: Vec<String> =
        LocalCatalog::new(dir.path()).cached().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["a/b/c/d/e/f/six"]);
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_does_not_repeat_or_hang_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sub/model.gguf", &tiny_gguf(None));
    std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("sub"), dir.path().join("sub/self")).unwrap();
    let names: Vec<String> =
        LocalCatalog::new(dir.path()).cached().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["sub/model"]);
}

#[test]
fn search_matches_names_case_insensitively_up_to_the_limit() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    let found = catalog.search("SMOLLM", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "nested/deeper/SmolLM2-135M-Instruct.Q8_0");
    assert_eq!(found[0].tags, ["gguf", "Q4_1"]);
    assert_eq!((found[0].downloads, found[0].likes), (None, None));

    let st = catalog.search("st-", 10).unwrap();
    assert_eq!(st[0].tags, ["safetensors", "BF16"]);
    assert_eq!(catalog.search("", 2).unwrap().len(), 2);
    assert_eq!(catalog.search("", 100).unwrap().len(), 5);
    assert!(catalog.search("mistral", 10).unwrap().is_empty());
}

#[test]
fn list_files_gives_each_models_files_with_sizes() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());

    let smol = catalog.list_files("nested/deeper/SmolLM2-135M-Instruct.Q8_0").unwrap();
    assert_eq!(smol.len(), 1);
    assert_eq!(smol[0].path, "SmolLM2-135M-Instruct.Q8_0.gguf");
    assert_eq!(smol[0].size, gguf_len());
    assert_eq!(smol[0].sha256, None);
    assert_eq!(smol[0].quantization.as_deref(), Some("Q8_0"), "parsed from the file name");

    let st = catalog.list_files("st-model").unwrap();
    let paths: Vec<&str> = st.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "tokenizer.json"
        ]
    );
    assert_eq!(st[1].size, tiny_safetensors().len() as u64);

    let big = catalog.list_files("big-Q4_0").unwrap();
    let paths: Vec<&str> = big.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["big-Q4_0-00001-of-00002.gguf", "big-Q4_0-00002-of-00002.gguf"]);
    assert!(big.iter().all(|f| f.quantization.as_deref() == Some("Q4_0")));
}

#[test]
fn list_files_of_an_unknown_model_is_not_found() {
    let dir = models_dir();
    let err = LocalCatalog::new(dir.path()).list_files("nope").unwrap_err();
    match err {
        HubError::NotFound { what, name } => assert_eq!((what, name.as_str()), ("model", "nope")),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn download_returns_a_local_file_and_reports_it_complete() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    let mut reports = Vec::new();
    let path = catalog
        .download("weights.bin", "weights.bin", &mut |p| reports.push(p), &CancelToken::new())
        .unwrap();
    assert_eq!(path, dir.path().join("weights.bin"));
    assert_eq!(reports, [Progress { downloaded: gguf_len(), total: Some(gguf_len()) }]);

    let shard = catalog
        .download("st-model", "model-00002-of-00002.safetensors", &mut |_| {}, &CancelToken::new())
        .unwrap();
    assert_eq!(shard, dir.path().join("st-model/model-00002-of-00002.safetensors"));

    let mut reports = Vec::new();
    let whole = catalog.download("st-model", "", &mut |p| reports.push(p), &CancelToken::new()).unwrap();
    assert_eq!(whole, dir.path().join("st-model"));
    let size = 2 * tiny_safetensors().len() as u64;
    assert_eq!(reports, [Progress { downloaded: size, total: Some(size) }]);
}

#[test]
fn download_of_a_model_not_on_disk_says_where_to_put_it() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    let mut called = false;
    let err = catalog
        .download(
            "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
            "q4_k_m.gguf",
            &mut |_| called = true,
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(matches!(err, HubError::Unsupported { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("Qwen/Qwen2.5-0.5B-Instruct-GGUF"), "{message}");
    assert!(message.contains("place the model file"), "{message}");
    assert!(message.contains(&dir.path().display().to_string()), "{message}");
    assert!(!called);
}

#[test]
fn download_of_a_missing_file_of_a_local_model_lists_its_files() {
    let dir = models_dir();
    let err = LocalCatalog::new(dir.path())
        .download("st-model", "model.safetensors", &mut |_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(err, HubError::NotFound { what: "file", .. }), "{err:?}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn a_cancelled_download_reports_nothing() {
    let dir = models_dir();
    let cancel = CancelToken::new();
    cancel.cancel();
    let mut called = false;
    let err = LocalCatalog::new(dir.path())
        .download("weights.bin", "weights.bin", &mut |_| called = true, &cancel)
        .unwrap_err();
    assert!(matches!(err, HubError::Cancelled), "{err:?}");
    assert!(!called);
}

#[test]
fn resolve_takes_exact_names_then_unique_case_insensitive_prefixes() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    assert_eq!(catalog.resolve("st-model").unwrap().name, "st-model");
    assert_eq!(catalog.resolve("WEIGHTS").unwrap().name, "weights.bin");
    let smol = catalog.resolve("nested/deeper/smol").unwrap();
    assert_eq!(smol.name, "nested/deeper/SmolLM2-135M-Instruct.Q8_0");
    assert_eq!(smol.quantization.as_deref(), Some("Q4_1"));
}

#[test]
fn an_exact_name_wins_over_longer_names_it_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.gguf", &tiny_gguf(None));
    write(dir.path(), "tiny-chat.gguf", &tiny_gguf(None));
    let catalog = LocalCatalog::new(dir.path());
    assert_eq!(catalog.resolve("tiny").unwrap().name, "tiny");
    assert_eq!(catalog.resolve("TINY").unwrap().name, "tiny");
    assert_eq!(catalog.resolve("tiny-").unwrap().name, "tiny-chat");
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let dir = models_dir();
    let err = LocalCatalog::new(dir.path()).resolve("n").unwrap_err();
    assert!(matches!(err, HubError::NotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("nested/deeper/SmolLM2-135M-Instruct.Q8_0"), "{message}");
    assert!(message.contains("nometa-Q5_K_M"), "{message}");
    assert!(message.contains("give more of the name"), "{message}");
}

#[test]
fn an_empty_reference_picks_nothing_even_from_one_model() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "only.gguf", &tiny_gguf(None));
    let err = LocalCatalog::new(dir.path()).resolve(" ").unwrap_err();
    assert!(matches!(err, HubError::NotFound { what: "model", .. }), "{err:?}");
    assert!(err.to_string().contains("empty name"), "{err}");
}

#[test]
fn an_unknown_name_lists_what_is_available() {
    let dir = models_dir();
    let err = LocalCatalog::new(dir.path()).resolve("llama-70b").unwrap_err();
    assert!(matches!(err, HubError::NotFound { what: "model", .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("llama-70b"), "{message}");
    assert!(message.contains("st-model") && message.contains("weights.bin"), "{message}");
}

#[test]
fn only_five_names_are_listed_in_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..8 {
        write(dir.path(), &format!("m{i}.gguf"), &tiny_gguf(None));
    }
    let message = LocalCatalog::new(dir.path()).resolve("zzz").unwrap_err().to_string();
    assert!(message.contains("m4 and 3 more"), "{message}");
    assert!(!message.contains("m5"), "{message}");
}

#[test]
fn resolve_accepts_a_path_outside_the_catalogue() {
    let models = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = write(elsewhere.path(), "mine.bin", &tiny_gguf(Some(FILE_TYPE_Q4_1)));
    let reference = path.to_str().unwrap();
    let model = LocalCatalog::new(models.path()).resolve(reference).unwrap();
    assert_eq!(model.name, reference);
    assert_eq!(model.path, path);
    assert_eq!(model.format, ModelFormat::Gguf);
    assert_eq!(model.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(model.size_bytes, gguf_len());
}

#[test]
fn resolve_of_a_path_inside_the_catalogue_gives_its_catalogue_entry() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    let shard = dir.path().join("big-Q4_0-00001-of-00002.gguf");
    let model = catalog.resolve(shard.to_str().unwrap()).unwrap();
    assert_eq!(model.name, "big-Q4_0");
    assert_eq!(model.size_bytes, 2 * tiny_gguf(None).len() as u64);

    let st = catalog.resolve(dir.path().join("st-model").to_str().unwrap()).unwrap();
    assert_eq!((st.name.as_str(), st.format), ("st-model", ModelFormat::Safetensors));
}

#[test]
fn resolve_of_a_bad_path_propagates_the_model_file_error() {
    let dir = models_dir();
    let catalog = LocalCatalog::new(dir.path());
    let broken = catalog.resolve(path_str(&dir.path().join("broken.gguf"))).unwrap_err();
    assert!(matches!(broken, HubError::ModelFile(ModelFileError::Truncated { .. })), "{broken:?}");
    let fake = catalog.resolve(path_str(&dir.path().join("fake.gguf"))).unwrap_err();
    assert!(matches!(fake, HubError::ModelFile(ModelFileError::UnknownFormat { .. })), "{fake:?}");
}

#[test]
fn the_catalogue_works_behind_the_trait_object() {
    let dir = models_dir();
    let hub: Arc<dyn ModelHub> = Arc::new(LocalCatalog::new(dir.path()));
    assert_eq!(hub.cached().unwrap().len(), 5);
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
