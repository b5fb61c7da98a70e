//! Settings of the Hugging Face Hub client, from the same environment variables that
//! `huggingface_hub` reads.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The environment variable holding an access token.
pub const TOKEN_ENV: &str = "HF_TOKEN";

/// The environment variable that turns offline mode on.
pub const OFFLINE_ENV: &str = "HF_HUB_OFFLINE";

/// How an [`HfHub`](crate::HfHub) reaches the Hub and where it keeps files.
///
/// [`from_env`](Self::from_env) reads the variables `huggingface_hub` reads, so Python tools
/// and ModelForge agree on the cache and the token. The token is never printed: `Debug` shows
/// only whether there is one.
#[derive(Clone)]
pub struct HfHubOptions {
    /// The Hub's base URL, without a trailing `/` (`HF_ENDPOINT`).
    pub endpoint: String,
    /// An access token for gated and private repositories (`HF_TOKEN`, else the file that
    /// `huggingface-cli login` writes).
    pub token: Option<String>,
    /// The cache directory (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Use only the cache, never the network (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// The branch, tag or commit used when none is given.
    pub revision: String,
    /// How long one read of the connection may wait before the transfer counts as cut.
    pub read_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Default for HfHubOptions {
    /// The public Hub, the default cache location, no token, online, `main`.
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            token: None,
            cache_dir: hf_home().join("hub"),
            offline: false,
            revision: "main".to_owned(),
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

impl HfHubOptions {
    /// Settings from `HF_ENDPOINT`, `HF_TOKEN` (else `HF_TOKEN_PATH`, else `$HF_HOME/token`),
    /// `HF_HUB_CACHE`/`HF_HOME` and `HF_HUB_OFFLINE` (`1`, `true`, `yes` or `on`).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let token_file = var("HF_TOKEN_PATH").map_or_else(|| hf_home().join("token"), PathBuf::from);
        let token =
            var(TOKEN_ENV).or_else(|| std::fs::read_to_string(token_file).ok()).map(|t| t.trim().to_owned());
        Self {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            token: token.filter(|t| !t.is_empty()),
            cache_dir: var("HF_HUB_CACHE").map_or_else(|| hf_home().join("hub"), PathBuf::from),
            offline: var(OFFLINE_ENV).is_some_and(|v| is_true(&v)),
            ..Self::default()
        }
    }
}

impl fmt::Debug for HfHubOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfHubOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("revision", &self.revision)
            .field("read_timeout", &self.read_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `HF_HOME`, else `~/.cache/huggingface`.
fn hf_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HF_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("huggingface")
}

fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let options = HfHubOptions { token: Some("hf_secret_value".into()), ..HfHubOptions::default() };
        let shown = format!("{options:?}");
        assert!(!shown.contains("hf_secret_value") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn offline_values_follow_huggingface_hub() {
        assert!(["1", "ON", "yes", "True"].iter().all(|v| is_true(v)));
        assert!(["0", "off", "", "no"].iter().all(|v| !is_true(v)));
    }
}
