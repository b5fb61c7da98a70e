//! The worker thread that owns llama.cpp's context: continuous batching, context reuse and
//! saved state.
//!
//! One thread per model owns the `LlamaContext` (it borrows the model and is not `Sync`, so a
//! thread is its natural owner). Callers send requests over a channel and receive pieces back,
//! over a channel of their own or through a sink the worker calls (see [`Events`]).
//! Each request gets a *slot*: a llama.cpp sequence id with its own sampler. Every step decodes
//! one batch holding the next token of every generating slot plus a chunk of any prompt still
//! being processed, so N conversations cost one forward pass per token, not N.
//!
//! Slots keep their KV cache after a reply. A new request goes to the idle slot sharing the
//! longest token prefix with its prompt, so turn N+1 of a chat only processes what turn N did
//! not already see. The cache is shared by all slots up to `cache_tokens`; when a new request
//! needs room, idle slots are evicted least recently used first.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use modelforge_core::{
    BackendError, CancelToken, FinishReason, Generation, GenerationParams, TokenLogprob, TopLogprob,
};

use super::{KvCacheType, inference_error, llama_backend};
use crate::bench::{BenchConfig, BenchReport};
use crate::sampling::{Sampler, log_sum_exp, sampler_chain};
use crate::stream::TextStream;

/// Sizes of the context the worker creates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// The most tokens one conversation may hold (prompt plus reply).
    pub context_length: u32,
    /// KV cache cells shared by all slots.
    pub cache_tokens: u32,
    /// Slots, i.e. sequences that can decode together.
    pub max_sequences: u32,
    /// Tokens per decode call.
    pub batch_size: u32,
    /// Inference threads.
    pub threads: i32,
    /// How keys and values are stored.
    pub kv_cache: KvCacheType,
}

/// Sent by the worker to the caller of a generation.
pub(crate) enum Event {
    /// A sampled token's log-probabilities (only when asked for), sent before the text it
    /// completes.
    Token(TokenLogprob),
    /// Text ready to show.
    Piece(String),
    /// The generation is over.
    Done(Result<Generation, BackendError>),
}

/// Where a generation's events go: a channel to a caller waiting on it, or a sink the worker
/// calls directly (see `LlamaCppModel::start_generation`). Shared by the job and its text
/// stream; only the worker thread sends.
#[derive(Clone)]
pub(crate) struct Events(Arc<Mutex<EventSink>>);

type EventSink = Box<dyn FnMut(Event) -> ControlFlow<()> + Send>;

/// The receiver of a generation's events has gone (or asked to stop).
pub(crate) struct Gone;

impl Events {
    /// Events handed to `sink`; [`ControlFlow::Break`] means the receiver wants no more.
    pub fn new(sink: impl FnMut(Event) -> ControlFlow<()> + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(sink))))
    }

    /// Events sent over a channel; a dropped receiver is gone.
    pub fn channel(tx: Sender<Event>) -> Self {
        Self::new(move |event| match tx.send(event) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        })
    }

    /// Hands `event` on, from the worker thread.
    pub fn send(&self, event: Event) -> Result<(), Gone> {
        let mut sink = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match sink(event) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Gone),
        }
    }
}

/// One generation request.
pub(crate) struct Request {
    pub tokens: Vec<LlamaToken>,
    pub params: GenerationParams,
    pub events: Events,
    /// The caller's token, and the engine's own for a callback that asked to stop: either
    /// stops the generation.
    pub cancel: [CancelToken; 2],
    /// Tokens that end the reply besides the vocabulary's end-of-generation tokens: the
    /// model's turn markers (see [`crate::turn_format`]).
    pub end_tokens: Arc<[LlamaToken]>,
}

type Reply<T> = Sender<Result<T, BackendError>>;

/// What callers can ask of the worker.
pub(crate) enum Command {
    Generate(Request),
    /// Save the cached conversation that best matches these tokens.
    SaveState {
        tokens: Vec<LlamaToken>,
        path: PathBuf,
        reply: Reply<usize>,
    },
    /// Load a state file into a free slot.
    LoadState {
        path: PathBuf,
        reply: Reply<usize>,
    },
    Bench {
        config: BenchConfig,
        reply: Reply<BenchReport>,
    },
}

/// The caller's side: a channel to the worker, which stops when this is dropped.
pub(crate) struct SchedulerHandle {
    tx: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl SchedulerHandle {
    /// Starts the worker for `model`.
    pub fn spawn(model: std::sync::Arc<LlamaModel>, settings: Settings) -> Result<Self, BackendError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("llama-scheduler".into())
            .spawn(move || Worker::new(&model, settings).run(rx))
            .map_err(|e| inference_error("starting the llama.cpp worker thread", e))?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// Sends a command; fails only if the worker is gone.
    pub fn send(&self, command: Command) -> Result<(), BackendError> {
        self.tx.as_ref().and_then(|tx| tx.send(command).ok()).ok_or_else(worker_stopped)
    }
}

/// The error of a call the worker can no longer answer: its thread has stopped.
pub(crate) fn worker_stopped() -> BackendError {
    BackendError::Inference { context: "the llama.cpp worker thread has stopped".into(), source: None }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A generation in progress in a slot.
struct Job {
    request: Request,
    sampler: Sampler,
    /// Prompt tokens not yet decoded.
    pending: VecDeque<LlamaToken>,
    /// The sampled token to decode next.
    next: Option<LlamaToken>,
    /// Batch index whose logits belong to this job after the current decode.
    logits_at: Option<i32>,
    /// The reply's text, sent to the caller piece by piece.
    stream: TextStream<PieceSender>,
    prompt_tokens: u32,
    /// Prompt tokens served from the cache.
    reused: usize,
    /// When the job entered its slot.
    started: Instant,
    /// Time spent in llama.cpp's decode over the steps this job took part in (a step shared
    /// with other slots counts whole): with `started`, the debug log says how much of a
    /// generation was the model itself.
    decoding: Duration,
    /// Steps this job took part in.
    steps: u32,
}

/// Sends each piece to the caller; a caller that has gone away cancels.
type PieceSender = Box<dyn FnMut(&str) -> ControlFlow<()>>;

impl Job {
    /// Cache cells this job may need in the worst case, beyond what is already cached.
    fn reserve(&self) -> usize {
        self.pending.len()
            + self.request.params.max_tokens.saturating_sub(self.stream.completion_tokens()) as usize
    }
}

/// Where [`Worker::place`] puts a request.
#[derive(Clone, Copy, Debug)]
struct Placement {
    /// The idle slot that runs it.
    slot: usize,
    /// Prompt tokens served from the cache.
    reuse: usize,
    /// Another slot whose first `reuse` cells are shared into `slot`.
    source: Option<usize>,
}

/// A llama.cpp sequence and what its KV cache holds.
struct Slot {
    seq: i32,
    /// The tokens whose keys and values are in the cache, in order.
    cached: Vec<LlamaToken>,
    last_used: u64,
    job: Option<Job>,
}

struct Worker<'m> {
    model: &'m LlamaModel,
    settings: Settings,
    ctx: Option<LlamaContext<'m>>,
    batch: LlamaBatch<'static>,
    slots: Vec<Slot>,
    queue: VecDeque<Request>,
    clock: u64,
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<'m> Worker<'m> {
    fn new(model: &'m LlamaModel, settings: Settings) -> Self {
        let slots = (0..settings.max_sequences as i32)
            .map(|seq| Slot { seq, cached: Vec::new(), last_used: 0, job: None })
            .collect();
        let batch = LlamaBatch::new(settings.batch_size as usize, 1);
        Self { model, settings, ctx: None, batch, slots, queue: VecDeque::new(), clock: 0 }
    }

    /// The context, created on first use so loading a model allocates no KV cache.
    fn ctx(&mut self) -> Result<&mut LlamaContext<'m>, BackendError> {
        if self.ctx.is_none() {
            let s = self.settings;
            let (kv_type, flash_attention) = s.kv_cache.llama_params();
            let params = LlamaContextParams::default()
                .with_type_k(kv_type)
                .with_type_v(kv_type)
                .with_flash_attention_policy(flash_attention)
                .with_n_ctx(std::num::NonZeroU32::new(s.cache_tokens))
                .with_n_batch(s.batch_size)
                .with_n_ubatch(s.batch_size)
                .with_n_seq_max(s.max_sequences)
                .with_kv_unified(true)
                .with_n_threads(s.threads)
                .with_n_threads_batch(s.threads);
            let ctx = self
                .model
                .new_context(llama_backend()?, params)
                .map_err(|e| inference_error("creating a llama.cpp context", e))?;
            self.ctx = Some(ctx);
        }
        Ok(self.ctx.as_mut().expect("just created"))
    }

    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let busy = self.slots.iter().any(|s| s.job.is_some());
            if !busy && self.queue.is_empty() {
                match rx.recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => return,
                }
            }
            while let Ok(command) = rx.try_recv() {
                self.handle(command);
            }
            self.admit();
            if self.slots.iter().any(|s| s.job.is_some()) {
                self.step();
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Generate(request) => self.queue.push_back(request),
            Command::SaveState { tokens, path, reply } => {
                let _ = reply.send(self.save_state(&tokens, &path));
            }
            Command::LoadState { path, reply } => {
                let _ = reply.send(self.load_state(&path));
            }
            Command::Bench { config, reply } => {
                let _ = reply.send(self.bench(&config));
            }
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Cache cells in use or promised: idle slots' cached tokens plus active slots' cached
    /// tokens and worst-case growth.
    fn cells_committed(&self) -> usize {
        self.slots.iter().map(|s| s.cached.len() + s.job.as_ref().map_or(0, Job::reserve)).sum()
    }

    /// Frees an idle slot's cache (not one of `keep`), least recently used first.
    fn evict_one(&mut self, keep: &[Option<usize>]) -> bool {
        let victim = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, s)| !keep.contains(&Some(*i)) && s.job.is_none() && !s.cached.is_empty())
            .min_by_key(|(_, s)| s.last_used)
            .map(|(i, _)| i);
        let Some(i) = victim else { return false };
        let seq = self.slots[i].seq;
        if let Some(ctx) = self.ctx.as_mut() {
            let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        }
        tracing::debug!(seq, tokens = self.slots[i].cached.len(), "evicted an idle conversation");
        self.slots[i].cached.clear();
        true
    }

    /// Where a prompt should run: the idle slot whose whole cache continues into it, else an
    /// empty slot, else the least recently used idle one. A prefix shared with any other slot
    /// (a common system prompt, say) is copied from there: in llama.cpp's unified cache that
    /// shares the cells instead of duplicating them, and leaves the other conversation warm.
    fn place(&self, tokens: &[LlamaToken]) -> Option<Placement> {
        let limit = tokens.len() - 1; // one prompt token must be decoded to get logits
        let idle = |i: &usize| self.slots[*i].job.is_none();
        let continues = (0..self.slots.len())
            .filter(idle)
            .filter(|&i| {
                let cached = &self.slots[i].cached;
                !cached.is_empty() && common_prefix(cached, tokens) == cached.len()
            })
            .max_by_key(|&i| self.slots[i].cached.len());
        if let Some(slot) = continues {
            return Some(Placement { slot, reuse: self.slots[slot].cached.len().min(limit), source: None });
        }
        // The same prompt again (a retry, a regenerated reply) runs over the old reply in the
        // slot that holds it: the same cache cells as the first time, so a greedy or seeded
        // reply comes out the same, which a copy into other cells does not promise.
        let repeat = (0..self.slots.len())
            .filter(idle)
            .find(|&i| common_prefix(&self.slots[i].cached, tokens) >= limit && limit > 0);
        if let Some(slot) = repeat {
            return Some(Placement { slot, reuse: limit, source: None });
        }
        let slot = (0..self.slots.len())
            .filter(idle)
            .min_by_key(|&i| (!self.slots[i].cached.is_empty(), self.slots[i].last_used))?;
        let (source, prefix) = (0..self.slots.len())
            .map(|i| (i, common_prefix(&self.slots[i].cached, tokens).min(limit)))
            .max_by_key(|&(i, prefix)| (prefix, i == slot))?;
        Some(match prefix {
            0 => Placement { slot, reuse: 0, source: None },
            _ if source == slot => Placement { slot, reuse: prefix, source: None },
            _ => Placement { slot, reuse: prefix, source: Some(source) },
        })
    }

    /// Moves queued requests into free slots while the cache has room.
    fn admit(&mut self) {
        while let Some(request) = self.queue.front() {
            let Some(mut place) = self.place(&request.tokens) else { return };
            let tokens = request.tokens.len();
            let max_tokens = request.params.max_tokens as usize;
            let fits = |w: &Self, place: &Placement| {
                let need = tokens - place.reuse + max_tokens;
                w.cells_committed() - w.slots[place.slot].cached.len() + place.reuse + need
                    <= w.settings.cache_tokens as usize
            };
            while !fits(self, &place) && self.evict_one(&[Some(place.slot), place.source]) {}
            if !fits(self, &place) && place.source.is_some() {
                // Keeping the shared prefix costs more room than it saves: start from scratch.
                place = Placement { reuse: 0, source: None, ..place };
                while !fits(self, &place) && self.evict_one(&[Some(place.slot)]) {}
            }
            if !fits(self, &place) {
                if self.slots.iter().any(|s| s.job.is_some()) {
                    // Running generations hold the room; try again when one ends.
                    return;
                }
                let request = self.queue.pop_front().expect("front exists");
                let err = BackendError::ContextOverflow {
                    prompt_tokens: tokens as u32,
                    reserved: max_tokens as u32,
                    context_length: self.settings.cache_tokens,
                };
                let _ = request.events.send(Event::Done(Err(err)));
                continue;
            }
            let request = self.queue.pop_front().expect("front exists");
            if let Err(err) = self.start(place, request) {
                tracing::warn!(%err, "could not start a generation");
            }
        }
    }

    fn start(&mut self, place: Placement, request: Request) -> Result<(), BackendError> {
        let sampler = match sampler_chain(&request.params, self.model) {
            Ok(sampler) => sampler,
            Err(err) => {
                let _ = request.events.send(Event::Done(Err(err)));
                return Ok(());
            }
        };
        let seq = self.slots[place.slot].seq;
        let ctx = match self.ctx() {
            Ok(ctx) => ctx,
            Err(err) => {
                let _ = request.events.send(Event::Done(Err(err)));
                return Ok(());
            }
        };
        let reuse = match place.source {
            Some(source) => {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                let _ = ctx.copy_kv_cache_seq(source as i32, seq, None, Some(place.reuse as u32));
                place.reuse
            }
            None if matches!(
                ctx.clear_kv_cache_seq(Some(seq as u32), Some(place.reuse as u32), None),
                Ok(true)
            ) =>
            {
                place.reuse
            }
            None => {
                // Some caches cannot drop a tail; start the sequence over.
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                0
            }
        };
        let now = self.tick();
        let slot = &mut self.slots[place.slot];
        slot.cached = request.tokens[..reuse].to_vec();
        slot.last_used = now;
        tracing::debug!(
            seq,
            prompt = request.tokens.len(),
            reused = reuse,
            copied = place.source.is_some(),
            "generation admitted"
        );
        let events = request.events.clone();
        let send: PieceSender =
            Box::new(move |piece: &str| match events.send(Event::Piece(piece.to_owned())) {
                Ok(()) => ControlFlow::Continue(()),
                Err(Gone) => ControlFlow::Break(()),
            });
        slot.job = Some(Job {
            sampler,
            pending: request.tokens[reuse..].iter().copied().collect(),
            next: None,
            logits_at: None,
            stream: TextStream::new(&request.params, send),
            prompt_tokens: request.tokens.len() as u32,
            reused: reuse,
            started: Instant::now(),
            decoding: Duration::ZERO,
            steps: 0,
            request,
        });
        Ok(())
    }

    /// One decode call for every active slot.
    fn step(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i]
                .job
                .as_ref()
                .is_some_and(|j| j.request.cancel.iter().any(CancelToken::is_cancelled))
            {
                self.finish(i, FinishReason::Cancelled);
            }
        }
        if let Err(err) = self.fill_batch() {
            self.fail_all(err);
            return;
        }
        if self.batch.n_tokens() == 0 {
            return;
        }
        let decode_started = Instant::now();
        let mut result = self.decode();
        let decode_time = decode_started.elapsed();
        for job in self.slots.iter_mut().filter_map(|s| s.job.as_mut()) {
            job.decoding += decode_time;
            job.steps += 1;
        }
        if matches!(&result, Err(BackendError::Inference { context, .. }) if context.contains("NoKvCacheSlot"))
        {
            while self.evict_one(&[]) {}
            result = self.decode();
        }
        if let Err(err) = result {
            // The failed batch left nothing usable in the cache of the slots involved.
            for slot in &mut self.slots {
                if slot.job.is_some() {
                    slot.cached.clear();
                }
            }
            if let Some(ctx) = self.ctx.as_mut() {
                for slot in &self.slots {
                    if slot.job.is_some() {
                        let _ = ctx.clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                    }
                }
            }
            self.fail_all(err);
            return;
        }
        for i in 0..self.slots.len() {
            self.sample(i);
        }
    }

    fn decode(&mut self) -> Result<(), BackendError> {
        let ctx = self.ctx.as_mut().expect("a context exists while slots are active");
        ctx.decode(&mut self.batch).map_err(|e| inference_error(&format!("decoding a batch ({e})"), e))
    }

    /// Puts the next token of each generating slot, then prompt chunks, into the batch.
    fn fill_batch(&mut self) -> Result<(), BackendError> {
        let capacity = self.settings.batch_size as i32;
        let batch = &mut self.batch;
        batch.clear();
        let add_err = |e| inference_error("building a batch", e);
        for slot in self.slots.iter_mut() {
            let Some(job) = slot.job.as_mut() else { continue };
            job.logits_at = None;
            if let Some(token) = job.next.take() {
                batch.add(token, slot.cached.len() as i32, &[slot.seq], true).map_err(add_err)?;
                slot.cached.push(token);
                job.logits_at = Some(batch.n_tokens() - 1);
            }
        }
        for slot in self.slots.iter_mut() {
            let Some(job) = slot.job.as_mut() else { continue };
            let mut added = 0;
            while batch.n_tokens() < capacity {
                // The last prompt token is decoded in a step of its own: a later request that
                // reuses this prompt's cache decodes it alone too, so both see the same logits
                // and a greedy or seeded reply does not change with what was cached.
                if job.pending.len() == 1 && added > 0 {
                    break;
                }
                let Some(token) = job.pending.pop_front() else { break };
                added += 1;
                let last = job.pending.is_empty();
                batch.add(token, slot.cached.len() as i32, &[slot.seq], last).map_err(add_err)?;
                slot.cached.push(token);
                if last {
                    job.logits_at = Some(batch.n_tokens() - 1);
                }
            }
        }
        Ok(())
    }

    /// Samples the next token of slot `i` if its logits are ready, and streams its text.
    fn sample(&mut self, i: usize) {
        let Some(ctx) = self.ctx.as_ref() else { return };
        let vocab = self.model.vocab();
        let Some(job) = self.slots[i].job.as_mut() else { return };
        let Some(at) = job.logits_at.take() else { return };
        let token = job.sampler.sample(ctx, at);
        if vocab.is_eog(token) || job.request.end_tokens.contains(&token) {
            return self.finish(i, FinishReason::Stop);
        }
        if let Some(top) = job.request.params.logprobs {
            let logprob = token_logprob(self.model, ctx.get_logits_ith(at), token, top as usize);
            if job.request.events.send(Event::Token(logprob)).is_err() {
                return self.finish(i, FinishReason::Cancelled);
            }
        }
        match job.stream.push_token(&vocab.token_to_piece(token, false, None)) {
            ControlFlow::Break(reason) => self.finish(i, reason),
            ControlFlow::Continue(()) => job.next = Some(token),
        }
    }

    /// Ends slot `i`'s job and sends its result. The slot keeps its cache for the next turn.
    fn finish(&mut self, i: usize, reason: FinishReason) {
        let now = self.tick();
        let slot = &mut self.slots[i];
        let Some(job) = slot.job.take() else { return };
        slot.last_used = now;
        let done = job.stream.finish(reason);
        tracing::debug!(
            seq = slot.seq,
            prompt = job.prompt_tokens,
            reused = job.reused,
            completion = done.completion_tokens,
            ?reason,
            steps = job.steps,
            decode_ms = job.decoding.as_secs_f64() * 1e3,
            total_ms = job.started.elapsed().as_secs_f64() * 1e3,
            "generation done"
        );
        let cached_tokens = job.reused as u32;
        let mut generation = done.into_generation(job.prompt_tokens);
        generation.usage.cached_tokens = cached_tokens;
        let _ = job.request.events.send(Event::Done(Ok(generation)));
    }

    fn fail_all(&mut self, err: BackendError) {
        let message = err.to_string();
        for slot in &mut self.slots {
            if let Some(job) = slot.job.take() {
                let err = BackendError::Inference { context: message.clone(), source: None };
                let _ = job.request.events.send(Event::Done(Err(err)));
            }
        }
    }

    fn save_state(&mut self, tokens: &[LlamaToken], path: &Path) -> Result<usize, BackendError> {
        let best = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.job.is_none())
            .map(|(i, s)| (i, common_prefix(&s.cached, tokens)))
            .max_by_key(|&(_, n)| n)
            .filter(|&(_, n)| n > 0);
        let Some((index, n)) = best else {
            return Err(BackendError::Inference {
                context: "nothing cached for this conversation: generate first, then save".into(),
                source: None,
            });
        };
        let seq = self.slots[index].seq;
        let ctx = self.ctx()?;
        // Keep only the matching prefix, so the file holds exactly what its token list says.
        let _ = ctx.clear_kv_cache_seq(Some(seq as u32), Some(n as u32), None);
        let slot_tokens = self.slots[index].cached[..n].to_vec();
        self.slots[index].cached.truncate(n);
        let ctx = self.ctx()?;
        ctx.state_seq_save_file(path, seq, &slot_tokens)
            .map_err(|e| inference_error(&format!("saving state to {}", path.display()), e))?;
        Ok(n)
    }

    fn load_state(&mut self, path: &Path) -> Result<usize, BackendError> {
        // Any idle slot will do; make it empty first.
        let index = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.job.is_none())
            .min_by_key(|(_, s)| (!s.cached.is_empty(), s.last_used))
            .map(|(i, _)| i)
            .ok_or_else(|| BackendError::Inference { context: "every slot is busy".into(), source: None })?;
        let seq = self.slots[index].seq;
        self.slots[index].cached.clear();
        let max_tokens = self.settings.context_length as usize;
        let ctx = self.ctx()?;
        let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        let loaded = ctx.state_seq_load_file(path, seq, max_tokens);
        let (tokens, _) = match loaded {
            Ok(ok) => ok,
            Err(e) => {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                return Err(inference_error(
                    &format!("llama.cpp refused the state file {}", path.display()),
                    e,
                ));
            }
        };
        while self.cells_committed() + tokens.len() > self.settings.cache_tokens as usize {
            if !self.evict_one(&[Some(index)]) {
                break;
            }
        }
        let now = self.tick();
        let slot = &mut self.slots[index];
        slot.cached = tokens;
        slot.last_used = now;
        Ok(slot.cached.len())
    }

    /// llama-bench's method: `pp` random tokens in batches, then `tg` single-token steps for
    /// each of `parallel` sequences, after a warm-up, on an empty cache.
    fn bench(&mut self, config: &BenchConfig) -> Result<BenchReport, BackendError> {
        if self.slots.iter().any(|s| s.job.is_some()) || !self.queue.is_empty() {
            return Err(BackendError::Inference {
                context: "cannot benchmark while generating".into(),
                source: None,
            });
        }
        let parallel = config.parallel.max(1);
        if parallel > self.slots.len() {
            return Err(BackendError::Inference {
                context: format!(
                    "--parallel {parallel} exceeds the {} sequences this model was loaded for",
                    self.slots.len()
                ),
                source: None,
            });
        }
        let needed = config.prompt_tokens.max(parallel * config.generated_tokens);
        if needed > self.settings.cache_tokens as usize {
            return Err(BackendError::ContextOverflow {
                prompt_tokens: needed as u32,
                reserved: 0,
                context_length: self.settings.cache_tokens,
            });
        }
        for slot in &mut self.slots {
            slot.cached.clear();
        }
        let n_vocab = self.model.n_vocab().max(1) as u64;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random_token = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            LlamaToken((seed >> 33) as i32 % n_vocab as i32)
        };
        let batch_size = self.settings.batch_size as usize;
        let prompt_pass = |w: &mut Self, tokens: &[LlamaToken]| -> Result<(), BackendError> {
            for (chunk_index, chunk) in tokens.chunks(batch_size).enumerate() {
                w.batch.clear();
                for (i, &t) in chunk.iter().enumerate() {
                    let pos = (chunk_index * batch_size + i) as i32;
                    let last = chunk_index * batch_size + i == tokens.len() - 1;
                    w.batch.add(t, pos, &[0], last).map_err(|e| inference_error("building a batch", e))?;
                }
                w.decode()?;
            }
            Ok(())
        };
        self.ctx()?.clear_kv_cache();
        let warmup: Vec<LlamaToken> = (0..16).map(|_| random_token()).collect();
        prompt_pass(self, &warmup)?;
        self.ctx()?.clear_kv_cache();

        let prompt: Vec<LlamaToken> = (0..config.prompt_tokens).map(|_| random_token()).collect();
        let pp_tps = if prompt.is_empty() {
            0.0
        } else {
            let start = Instant::now();
            prompt_pass(self, &prompt)?;
            prompt.len() as f64 / start.elapsed().as_secs_f64()
        };
        self.ctx()?.clear_kv_cache();

        let start = Instant::now();
        for pos in 0..config.generated_tokens {
            self.batch.clear();
            for seq in 0..parallel as i32 {
                self.batch
                    .add(random_token(), pos as i32, &[seq], true)
                    .map_err(|e| inference_error("building a batch", e))?;
            }
            self.decode()?;
        }
        let tg_tps = (parallel * config.generated_tokens) as f64
            / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
        self.ctx()?.clear_kv_cache();
        Ok(BenchReport { backend: "llama-cpp".into(), pp_tps, tg_tps, config: *config })
    }
}

/// The log-probability of `token` under `logits` (the model's raw distribution, before any
/// sampler), with the `top` most likely tokens.
fn token_logprob(model: &LlamaModel, logits: &[f32], token: LlamaToken, top: usize) -> TokenLogprob {
    let log_sum = log_sum_exp(logits);
    // Most likely first; `top` is small (at most 20), so insertion into a short list is cheap.
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(top + 1);
    for (id, &logit) in logits.iter().enumerate() {
        if top > 0 && (best.len() < top || logit > best[best.len() - 1].1) {
            let at = best.partition_point(|&(_, l)| l >= logit);
            best.insert(at, (id, logit));
            best.truncate(top);
        }
    }
    let text = |t: LlamaToken| {
        let bytes = model.vocab().token_to_piece(t, false, None);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    };
    let (token_text, bytes) = text(token);
    let logit = logits.get(token.0 as usize).copied().unwrap_or(f32::NEG_INFINITY);
    TokenLogprob {
        token: token_text,
        bytes,
        logprob: logit - log_sum,
        top: best
            .into_iter()
            .map(|(id, logit)| {
                let (token, bytes) = text(LlamaToken(id as i32));
                TopLogprob { token, bytes, logprob: logit - log_sum }
            })
            .collect(),
    }
}
