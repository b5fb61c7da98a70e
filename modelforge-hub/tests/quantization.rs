//! `parse_quantization` over real-world file names.

use modelforge_hub::parse_quantization;

#[test]
fn quantizations_are_parsed_from_file_names() {
    let table: &[(&str, Option<&str>)] = &[
        ("SmolLM2-135M-Instruct.Q4_1.gguf", Some("Q4_1")),
        ("qwen2.5-0.5b-instruct-q4_k_m.gguf", Some("Q4_K_M")),
        ("model-bf16-00001-of-00002.gguf", Some("BF16")),
        ("Meta-Llama-3-8B-Instruct.Q8_0.gguf", Some("Q8_0")),
        ("Llama-3.2-1B-Instruct-Q3_K_L.gguf", Some("Q3_K_L")),
        ("llama-3.2-1b-instruct-q3_k_s.gguf", Some("Q3_K_S")),
        ("phi-2.Q2_K.gguf", Some("Q2_K")),
        ("mistral-7b-v0.1.Q5_K_S.gguf", Some("Q5_K_S")),
        ("mistral-7b-v0.1.Q6_K.gguf", Some("Q6_K")),
        ("tinyllama-1.1b-chat-v1.0.Q4_0.gguf", Some("Q4_0")),
        ("tinyllama-1.1b-chat-v1.0.Q5_1.gguf", Some("Q5_1")),
        ("gemma-2-2b-it-IQ2_XXS.gguf", Some("IQ2_XXS")),
        ("gemma-2-2b-it-IQ2_XS.gguf", Some("IQ2_XS")),
        ("gemma-2-2b-it-iq3_xxs.gguf", Some("IQ3_XXS")),
        ("Qwen2.5-7B-Instruct-IQ4_XS.gguf", Some("IQ4_XS")),
        ("Qwen2.5-7B-Instruct-IQ4_NL.gguf", Some("IQ4_NL")),
        ("Qwen2.5-7B-Instruct-IQ1_M.gguf", Some("IQ1_M")),
        ("bitnet_b1_58-large-TQ1_0.gguf", Some("TQ1_0")),
        ("bitnet_b1_58-large-tq2_0.gguf", Some("TQ2_0")),
        ("nomic-embed-text-v1.5.f16.gguf", Some("F16")),
        ("all-MiniLM-L6-v2-F32.gguf", Some("F32")),
        ("model-Q4-K-M.gguf", Some("Q4_K_M")),
        ("org/repo/model.Q5_K_M.gguf", Some("Q5_K_M")),
        // Negatives: no quantization, or one only inside a word.
        ("leaf16x.gguf", None),
        ("model.gguf", None),
        ("bf16model.gguf", None),
        ("q4_k_mx.gguf", None),
        ("xq8_0.gguf", None),
        ("config.json", None),
        ("model-00001-of-00002.safetensors", None),
        ("", None),
    ];
    for &(name, expected) in table {
        assert_eq!(parse_quantization(name).as_deref(), expected, "file name {name:?}");
    }
}
