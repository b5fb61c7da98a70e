//! A [`GenerationSink`] that records what it hears, for tests of
//! [`LoadedModel::start_generation`].

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use modelforge_core::{
    BackendError, CancelToken, Generation, GenerationParams, GenerationSink, LoadedModel, TokenLogprob,
};

/// What a started generation's sink heard.
#[derive(Debug)]
pub struct Heard {
    /// The pieces, in order.
    pub pieces: Vec<String>,
    /// The name of the thread each piece was handed over on.
    pub threads: Vec<Option<String>>,
    /// How the generation ended.
    pub result: Result<Generation, BackendError>,
}

enum Event {
    Piece(String, Option<String>),
    Done(Result<Generation, BackendError>),
}

/// Passes everything on to the test and asks to stop after `stop_after` pieces.
struct Recorder {
    tx: Sender<Event>,
    stop_after: usize,
}

impl GenerationSink for Recorder {
    fn piece(&mut self, text: &str, _tokens: &[TokenLogprob]) -> ControlFlow<()> {
        let thread = std::thread::current().name().map(str::to_owned);
        let _ = self.tx.send(Event::Piece(text.to_owned(), thread));
        self.stop_after = self.stop_after.saturating_sub(1);
        if self.stop_after == 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn done(self: Box<Self>, result: Result<Generation, BackendError>) {
        let _ = self.tx.send(Event::Done(result));
    }
}

/// Starts a generation on `model` whose sink asks to stop after `stop_after` pieces, and waits
/// until the model lets go of the sink. Panics unless the result came once, after every piece.
pub fn start_and_wait(
    model: Arc<dyn LoadedModel>,
    prompt: &str,
    params: GenerationParams,
    stop_after: usize,
) -> Heard {
    let (tx, rx) = std::sync::mpsc::channel();
    model.start_generation(
        prompt.to_owned(),
        params,
        CancelToken::new(),
        Box::new(Recorder { tx, stop_after }),
    );
    let (mut pieces, mut threads, mut results) = (Vec::new(), Vec::new(), Vec::new());
    // The channel closes when the model drops the sink.
    for event in rx {
        match event {
            Event::Piece(text, thread) => {
                assert!(results.is_empty(), "a piece after the result");
                pieces.push(text);
                threads.push(thread);
            }
            Event::Done(result) => results.push(result),
        }
    }
    assert_eq!(results.len(), 1, "the sink hears the result exactly once");
    Heard { pieces, threads, result: results.remove(0) }
}
