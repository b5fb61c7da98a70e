//! BERT sentence embeddings with all-MiniLM-L6-v2.
#![cfg(feature = "candle")]

use std::sync::OnceLock;

use modelforge_core::Embedder;
use modelforge_engine::MiniLmEmbedder;

fn embedder() -> &'static MiniLmEmbedder {
    static EMBEDDER: OnceLock<MiniLmEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| MiniLmEmbedder::load(modelforge_testkit::minilm_dir()).expect("MiniLM loads"))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Sentences with the same meaning in different words.
const PARAPHRASES: &[(&str, &str)] = &[
    ("My name is Lina.", "I am called Lina."),
    ("I live in Berlin.", "Berlin is where I reside."),
    ("I love drinking green tea.", "Green tea is my favourite drink."),
    ("The weather is lovely today.", "It is a beautiful day outside."),
    ("How do I reset my password?", "What are the steps to change my password?"),
    ("The cat is sleeping on the sofa.", "A cat naps on the couch."),
    ("He bought a new car yesterday.", "Yesterday he purchased a new automobile."),
    ("I am allergic to peanuts.", "Peanuts give me an allergic reaction."),
    ("The meeting has been moved to Friday.", "We rescheduled the meeting for Friday."),
    ("She plays the piano every evening.", "Every night she practises piano."),
    ("The train was delayed by an hour.", "The train arrived one hour late."),
    ("Please close the window.", "Could you shut the window?"),
];

/// Sentences about different things.
const UNRELATED: &[(&str, &str)] = &[
    ("My name is Lina.", "The stock market fell sharply."),
    ("I live in Berlin.", "Photosynthesis converts light into chemical energy."),
    ("I love drinking green tea.", "The server returned a 404 error."),
    ("The weather is lovely today.", "He is learning to write Rust macros."),
    ("How do I reset my password?", "Elephants are the largest land animals."),
    ("The cat is sleeping on the sofa.", "Interest rates will rise next quarter."),
    ("He bought a new car yesterday.", "The recipe needs two cups of flour."),
    ("I am allergic to peanuts.", "The orchestra tuned their instruments."),
    ("The meeting has been moved to Friday.", "Volcanoes form at tectonic plate boundaries."),
    ("She plays the piano every evening.", "Compile the kernel with debug symbols."),
    ("The train was delayed by an hour.", "My favourite colour is blue."),
    ("Please close the window.", "Quantum computers use qubits."),
];

fn pair_scores(pairs: &[(&str, &str)]) -> Vec<f32> {
    let texts: Vec<&str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let vectors = embedder().embed(&texts).unwrap();
    vectors.chunks(2).map(|v| cosine(&v[0], &v[1])).collect()
}

#[test]
fn paraphrases_score_above_unrelated_pairs() {
    let para = pair_scores(PARAPHRASES);
    let unrelated = pair_scores(UNRELATED);
    let worst_paraphrase = para.iter().copied().fold(f32::INFINITY, f32::min);
    let best_unrelated = unrelated.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(
        worst_paraphrase > best_unrelated + 0.1,
        "every paraphrase must beat every unrelated pair by a margin: paraphrases {para:?}, unrelated {unrelated:?}"
    );
    // Pair by pair: a sentence is closer to its paraphrase than to an unrelated sentence.
    for (i, (p, u)) in para.iter().zip(&unrelated).enumerate() {
        assert!(p - u > 0.3, "pair {i} ({:?}): paraphrase {p} vs unrelated {u}", PARAPHRASES[i].0);
    }
}

#[test]
fn vectors_are_unit_length_with_384_dimensions() {
    let e = embedder();
    assert_eq!(e.dimensions(), 384);
    let vectors = e
        .embed(&["short", "a much longer sentence with many more words in it than the other one", "中文句子"])
        .unwrap();
    assert_eq!(vectors.len(), 3);
    for v in &vectors {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn a_batch_gives_the_same_vectors_as_one_by_one() {
    let texts =
        ["Hi", "The meeting has been moved to Friday afternoon, after lunch.", "Rust", "我喜欢喝绿茶。"];
    let batch = embedder().embed(&texts).unwrap();
    for (text, batched) in texts.iter().zip(&batch) {
        let alone = &embedder().embed(&[text]).unwrap()[0];
        let diff = alone.iter().zip(batched).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-4, "{text:?}: padding changed the vector by {diff}");
    }
}

#[test]
fn a_missing_model_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = MiniLmEmbedder::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
}
