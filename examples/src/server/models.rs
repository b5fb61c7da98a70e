//! The models a server can serve: the local catalogue, models loaded on demand within a
//! budget (least recently used unloaded first), pulls from the Hub with progress, and
//! `/health`.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use modelforge_core::{CachedModel, CancelToken, LoadOptions, LoadedModel, ModelHub};
use modelforge_hub::{HfHub, HfHubOptions, ModelRef};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

use super::auth::{Admin, Authenticated};
use super::error::{Body, PathParam};
use super::{ApiError, AppState, blocking};
use crate::setup::{self, Loader};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/models", get(list))
        .route("/models/pull", post(pull))
        .route("/models/{*name}", delete(remove))
}

/// The models a server can serve and the ones in memory.
pub struct ModelPool {
    data_dir: PathBuf,
    /// Models named on the command line (or inserted loaded), served whatever the catalogue
    /// holds.
    explicit: Mutex<Vec<CachedModel>>,
    default: String,
    options: LoadOptions,
    loader: Loader,
    max_loaded: usize,
    /// Most recently used first.
    loaded: Mutex<Vec<(String, Arc<dyn LoadedModel>)>>,
    /// One load at a time: two requests for one model load it once.
    loading_lock: Mutex<()>,
    loading: AtomicUsize,
    /// The Hub pulls go to and its cache; `None`: from the environment at each use.
    hub: Option<HfHubOptions>,
}

impl ModelPool {
    /// A pool serving `explicit` models and those found in the catalogue of `data_dir` and the
    /// Hugging Face cache; `default` answers sessions that name none. At most `max_loaded`
    /// models stay in memory.
    pub fn new(
        data_dir: PathBuf,
        explicit: Vec<CachedModel>,
        default: String,
        options: LoadOptions,
        loader: Loader,
        max_loaded: usize,
    ) -> Self {
        Self {
            data_dir,
            explicit: Mutex::new(explicit),
            default,
            options,
            loader,
            max_loaded: max_loaded.max(1),
            loaded: Mutex::default(),
            loading_lock: Mutex::default(),
            loading: AtomicUsize::new(0),
            hub: None,
        }
    }

    /// Pulls from, lists and removes in the Hub `options` describe (endpoint, cache) instead
    /// of the one the environment names (`HF_ENDPOINT`, `HF_HUB_CACHE`...): for a server in a
    /// process whose environment is not its own, such as a test's.
    #[must_use]
    pub fn with_hub(mut self, options: HfHubOptions) -> Self {
        self.hub = Some(options);
        self
    }

    /// The Hub client.
    pub fn hub(&self) -> HfHub {
        match &self.hub {
            Some(options) => HfHub::new(options.clone()),
            None => setup::hub(),
        }
    }

    /// Adds an already loaded model under `name` (the server's first model, or a test's).
    pub fn insert(&self, name: &str, model: Arc<dyn LoadedModel>) {
        let mut explicit = lock(&self.explicit);
        if !explicit.iter().any(|m| m.name == name) {
            let info = model.info();
            explicit.push(CachedModel {
                name: name.to_owned(),
                path: info.path.clone(),
                format: info.format,
                quantization: info.quantization.clone(),
                size_bytes: info.size_bytes,
            });
        }
        drop(explicit);
        let mut loaded = lock(&self.loaded);
        loaded.retain(|(n, _)| n != name);
        loaded.insert(0, (name.to_owned(), model));
    }

    /// The model sessions get when they name none.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// Every model the server can serve: those named at start, then the catalogue's GGUF
    /// files and llama-family safetensors directories (DATA_DIR/models, then the Hugging Face
    /// cache).
    pub fn catalogue(&self) -> Vec<CachedModel> {
        let mut all = lock(&self.explicit).clone();
        let found = setup::catalog(&self.data_dir).cached().unwrap_or_default();
        let pulled = self.hub().cached().unwrap_or_default();
        for model in found.into_iter().chain(pulled) {
            if setup::servable(&model) && !all.iter().any(|m| m.name == model.name) {
                all.push(model);
            }
        }
        all
    }

    /// A 404 unless `name` can be served.
    /// Reads the catalogue (the disk), so call it on the blocking pool.
    pub fn check_known(&self, name: &str) -> Result<(), ApiError> {
        if self.is_loaded(name) {
            return Ok(());
        }
        self.find(name).map(|_| ())
    }

    /// The catalogue's entry named `name`, or a 404.
    /// Reads the catalogue (the disk), so call it on the blocking pool.
    pub fn find(&self, name: &str) -> Result<CachedModel, ApiError> {
        self.catalogue().into_iter().find(|m| m.name == name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("no model named `{name}` on this server (GET /api/models lists them)"),
            )
        })
    }

    /// The model `name` (the default for `None`), loaded now if it is not in memory; the
    /// least recently used model is unloaded when the budget is full. Blocks while loading.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<dyn LoadedModel>, ApiError> {
        let name = name.unwrap_or(&self.default);
        if let Some(model) = self.touch(name) {
            return Ok(model);
        }
        let _one_at_a_time = lock(&self.loading_lock);
        if let Some(model) = self.touch(name) {
            return Ok(model);
        }
        let path = self.find(name)?.path.display().to_string();
        self.loading.fetch_add(1, Ordering::SeqCst);
        let loaded = setup::load_model(&self.data_dir, &path, &self.options, self.loader);
        self.loading.fetch_sub(1, Ordering::SeqCst);
        let model =
            loaded.map_err(|err| ApiError::internal(format!("cannot load model `{name}`: {err:#}")))?;
        let mut all = lock(&self.loaded);
        all.insert(0, (name.to_owned(), Arc::clone(&model)));
        // Replies still running keep their model alive; it is freed when they end.
        all.truncate(self.max_loaded);
        Ok(model)
    }

    /// The backend and chat format of `model`: the loaded model's own word when it is in
    /// memory, else read from its files.
    fn describe(&self, model: &CachedModel) -> setup::ModelDescription {
        let mut described =
            setup::describe_model(&model.path, self.options.chat_template.as_deref(), self.loader.backend);
        if let Some(format) = self.peek(&model.name).and_then(|m| m.chat_format()) {
            described.chat_format = Some(format);
        }
        described
    }

    /// The loaded model `name`, without making it the most recently used.
    fn peek(&self, name: &str) -> Option<Arc<dyn LoadedModel>> {
        lock(&self.loaded).iter().find(|(n, _)| n == name).map(|(_, m)| Arc::clone(m))
    }

    /// Unloads `name` if it is loaded.
    pub fn unload(&self, name: &str) {
        lock(&self.loaded).retain(|(n, _)| n != name);
    }

    /// How many models are in memory.
    pub fn loaded_count(&self) -> usize {
        lock(&self.loaded).len()
    }

    /// Whether `name` is in memory.
    pub fn is_loaded(&self, name: &str) -> bool {
        lock(&self.loaded).iter().any(|(n, _)| n == name)
    }

    /// Whether a model is being loaded.
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::SeqCst) > 0
    }

    fn touch(&self, name: &str) -> Option<Arc<dyn LoadedModel>> {
        let mut loaded = lock(&self.loaded);
        let at = loaded.iter().position(|(n, _)| n == name)?;
        let entry = loaded.remove(at);
        let model = Arc::clone(&entry.1);
        loaded.insert(0, entry);
        Some(model)
    }
}

/// `GET /health`: 200 when a model answers, 503 with the reason while one loads.
pub async fn health(State(state): State<AppState>) -> Response {
    if state.replies.is_closed() {
        let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is stopping");
        return error.into_response();
    }
    let loaded = state.models.loaded_count();
    if state.models.is_loading() && loaded == 0 {
        let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "model_loading", "a model is loading");
        return error.into_response();
    }
    Json(json!({ "status": "ok", "models_loaded": loaded, "loading": state.models.is_loading() }))
        .into_response()
}

async fn list(
    State(state): State<AppState>,
    Authenticated(_): Authenticated,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let models = &state.models;
        let data: Vec<Value> = models
            .catalogue()
            .into_iter()
            .map(|m| {
                let described = models.describe(&m);
                json!({
                    "name": m.name,
                    "format": m.format.as_str(),
                    "size_bytes": m.size_bytes,
                    "quantization": m.quantization,
                    "backend": described.backend,
                    "chat_format": described.chat_format,
                    "error": described.error,
                    "loaded": models.is_loaded(&m.name),
                    "default": m.name == models.default_name(),
                    // Pulled from the Hub: DELETE /api/models/{name} removes it from the cache.
                    "removable": matches!(ModelRef::parse(&m.name), Ok(ModelRef::Hub { .. })),
                })
            })
            .collect();
        Ok(Json(json!({ "data": data })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullBody {
    #[serde(rename = "ref")]
    reference: String,
}

/// `POST /api/models/pull`: progress as server-sent events (`progress`, then `done` or
/// `error`). A client that leaves cancels the download; the next pull resumes it.
async fn pull(
    State(state): State<AppState>,
    Admin(_): Admin,
    Body(body): Body<PullBody>,
) -> Result<Response, ApiError> {
    if !matches!(ModelRef::parse(&body.reference), Ok(ModelRef::Hub { .. })) {
        return Err(ApiError::bad_request(format!(
            "`{}` is not a Hugging Face reference (`org/repo`, `org/repo:Q4_K_M`, `org/repo/file.gguf`)",
            body.reference
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(16);
    tokio::task::spawn_blocking(move || {
        let cancel = CancelToken::new();
        let mut last = 0u64;
        let mut on_progress = |p: modelforge_core::Progress| {
            // About one event per percent, not one per network read.
            let step = p.total.map_or(1 << 20, |t| (t / 100).max(1));
            if p.downloaded >= last + step || Some(p.downloaded) == p.total {
                last = p.downloaded;
                let data = json!({ "downloaded": p.downloaded, "total": p.total });
                if tx.blocking_send(Ok(Event::default().event("progress").data(data.to_string()))).is_err() {
                    cancel.cancel();
                }
            }
        };
        let event = match state.models.hub().pull(&body.reference, &mut on_progress, &cancel) {
            Ok(model) => Event::default().event("done").data(
                json!({ "name": model.name, "size_bytes": model.size_bytes, "quantization": model.quantization })
                    .to_string(),
            ),
            Err(err) => {
                let error = ApiError::bad_request(format!("pulling {}: {err}", body.reference));
                Event::default().event("error").data(error.body().to_string())
            }
        };
        let _ = tx.blocking_send(Ok(event));
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Admin(_): Admin,
    PathParam(name): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        if !matches!(ModelRef::parse(&name), Ok(ModelRef::Hub { .. })) {
            state.models.check_known(&name)?;
            return Err(ApiError::bad_request(format!(
                "`{name}` is a file in the server's models directory: delete it there"
            )));
        }
        let removed = state.models.hub().remove(&name).map_err(|err| match err {
            modelforge_core::HubError::NotFound { .. } => ApiError::not_found(err.to_string()),
            other => ApiError::bad_request(other.to_string()),
        })?;
        state.models.unload(&name);
        Ok(Json(json!({ "removed": removed.name, "bytes_freed": removed.bytes_freed })))
    })
    .await
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
