//! Every core trait can be held behind a pointer, and the provided methods work through it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use modelforge_core::*;

/// A stand-in model that echoes the rendered prompt's last line back, one word at a time.
struct Echo {
    info: ModelInfo,
}

impl LoadedModel for Echo {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn context_length(&self) -> u32 {
        64
    }
    fn tokenize(&self, text: &str, _add_special: bool) -> Result<Vec<u32>, BackendError> {
        Ok(text.split_whitespace().map(|w| w.len() as u32).collect())
    }
    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        let mut out: String = messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect();
        if add_generation_prompt {
            out.push_str("assistant:");
        }
        Ok(out)
    }
    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let line = prompt.lines().rev().nth(1).unwrap_or_default();
        let mut text = String::new();
        let mut finish_reason = FinishReason::Stop;
        for (i, word) in line.split_whitespace().enumerate() {
            if i as u32 == params.max_tokens {
                finish_reason = FinishReason::Length;
                break;
            }
            text.push_str(word);
            if on_piece(word).is_break() {
                finish_reason = FinishReason::Cancelled;
                break;
            }
        }
        let usage = Usage { prompt_tokens: self.count_tokens(prompt)? as u32, ..Usage::default() };
        Ok(Generation { text, finish_reason, usage })
    }
}

struct EchoBackend;

impl Backend for EchoBackend {
    fn name(&self) -> &str {
        "echo"
    }
    fn load(&self, path: &Path, _options: &LoadOptions) -> Result<Arc<dyn LoadedModel>, BackendError> {
        Ok(Arc::new(Echo {
            info: ModelInfo {
                path: path.to_owned(),
                format: ModelFormat::Gguf,
                name: "echo".into(),
                architecture: None,
                context_length: Some(64),
                quantization: None,
                chat_template: None,
                size_bytes: 0,
            },
        }))
    }
}

#[test]
fn backend_and_model_work_as_trait_objects() {
    let backend: Box<dyn Backend> = Box::new(EchoBackend);
    let model = backend.load(Path::new("x.gguf"), &LoadOptions::default()).unwrap();
    let mut pieces = Vec::new();
    let reply = model
        .chat(&[ChatMessage::user("hello there world")], &GenerationParams::greedy(), &mut |p| {
            pieces.push(p.to_owned());
            if pieces.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(pieces, ["user:", "hello"]);
    assert_eq!(reply.finish_reason, FinishReason::Cancelled);
    assert_eq!(model.count_tokens("a bb ccc").unwrap(), 3);
}

struct NoMemories;
impl MemoryExtractor for NoMemories {
    fn name(&self) -> &str {
        "none"
    }
    fn extract(&self, _turn: &[ChatMessage], _existing: &[Memory]) -> Result<Vec<MemoryOp>, MemoryError> {
        Err(MemoryError::Extraction { reason: "nothing to say".into() })
    }
}

struct Unit;
impl Embedder for Unit {
    fn dimensions(&self) -> usize {
        2
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BackendError> {
        Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
    }
}

struct EmptyHub;
impl ModelHub for EmptyHub {
    fn search(&self, _query: &str, _limit: usize) -> Result<Vec<RepoSummary>, HubError> {
        Ok(Vec::new())
    }
    fn list_files(&self, repo: &str) -> Result<Vec<RepoFile>, HubError> {
        Err(HubError::NotFound { what: "repository", name: repo.into() })
    }
    fn download(
        &self,
        _repo: &str,
        _file: &str,
        _on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf, HubError> {
        if cancel.is_cancelled() { Err(HubError::Cancelled) } else { Ok(PathBuf::new()) }
    }
    fn cached(&self) -> Result<Vec<CachedModel>, HubError> {
        Ok(Vec::new())
    }
    fn pull(
        &self,
        reference: &str,
        _on_progress: &mut dyn FnMut(Progress),
        _cancel: &CancelToken,
    ) -> Result<CachedModel, HubError> {
        Err(HubError::NotFound { what: "model", name: reference.into() })
    }
}

#[test]
fn the_other_traits_are_object_safe() {
    let extractor: Arc<dyn MemoryExtractor> = Arc::new(NoMemories);
    assert!(extractor.extract(&[], &[]).is_err());
    let embedder: Box<dyn Embedder> = Box::new(Unit);
    assert_eq!(embedder.embed(&["a", "b"]).unwrap().len(), 2);
    let hub: Box<dyn ModelHub> = Box::new(EmptyHub);
    let cancel = CancelToken::new();
    cancel.cancel();
    assert!(matches!(hub.download("a/b", "c", &mut |_| {}, &cancel), Err(HubError::Cancelled)));
    assert!(matches!(hub.pull("a/b", &mut |_| {}, &cancel), Err(HubError::NotFound { what: "model", .. })));
    // SessionStore is implemented in modelforge-store; holding it proves object safety.
    let store: Option<Arc<dyn SessionStore>> = None;
    assert!(store.is_none());
}
