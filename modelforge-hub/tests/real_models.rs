//! The catalogue over the real test models fetched by `scripts/test-models`.

use modelforge_core::{CancelToken, ModelFormat, ModelHub};
use modelforge_hub::LocalCatalog;
use modelforge_testkit::{minilm_dir, smollm2_gguf, test_models_dir};

#[test]
fn the_test_models_are_catalogued() {
    let (gguf, minilm) = (smollm2_gguf(), minilm_dir());
    let catalog = LocalCatalog::new(test_models_dir());
    let models = catalog.cached().unwrap();

    let smol =
        models.iter().find(|m| m.name == "smollm2/SmolLM2-135M-Instruct.Q4_1").expect("SmolLM2 listed");
    assert_eq!(smol.path, gguf);
    assert_eq!(smol.format, ModelFormat::Gguf);
    assert_eq!(smol.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(smol.size_bytes, gguf.metadata().unwrap().len());

    let st = models.iter().find(|m| m.name == "all-minilm-l6-v2").expect("MiniLM listed");
    assert_eq!((st.format, &st.path), (ModelFormat::Safetensors, &minilm));
    assert_eq!(st.size_bytes, minilm.join("model.safetensors").metadata().unwrap().len());

    assert_eq!(catalog.resolve("smol").unwrap().path, gguf);
    let files = catalog.list_files("all-minilm-l6-v2").unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"1_Pooling/config.json") && paths.contains(&"tokenizer.json"), "{paths:?}");
    assert!(!paths.contains(&".gitattributes"), "hidden files are not listed: {paths:?}");
    let path =
        catalog.download("all-minilm-l6-v2", "tokenizer.json", &mut |_| {}, &CancelToken::new()).unwrap();
    assert_eq!(path, minilm.join("tokenizer.json"));
}
