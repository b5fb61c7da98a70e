//! The guarded page fetcher: http and https only, every address checked after DNS resolution
//! (on the first request and on each redirect), a deadline and a size cap.
//!
//! The check sits in the resolver ureq connects with, so the address checked is the address
//! connected to: a name that resolves to a public address for the check and a private one for
//! the connection (DNS rebinding) cannot slip through.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::decode::decode_page;

/// How pages are fetched. `Default`: 512 KiB per page, 5 redirects, public addresses only.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// The most bytes read from one page; the rest is not downloaded.
    pub max_bytes: usize,
    /// The most redirects followed from one address.
    pub max_redirects: u8,
    /// Also fetch from loopback, private, link-local and cloud-metadata addresses (a local
    /// deployment, tests).
    pub allow_private: bool,
    /// Hosts (`host` or `host:port`) that may be on private addresses even without
    /// `allow_private`, e.g. an intranet wiki; a redirect from them to elsewhere is still
    /// checked.
    pub allow_hosts: Vec<String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self { max_bytes: 512 * 1024, max_redirects: 5, allow_private: false, allow_hosts: Vec::new() }
    }
}

/// A fetched page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Where the page was found, after redirects.
    pub url: String,
    /// The body as text, decoded by its BOM, the `Content-Type` header's charset or the page's
    /// `<meta charset>` (else UTF-8); malformed bytes replaced.
    pub html: String,
    /// The character encoding the body was decoded from (e.g. `UTF-8`, `GBK`).
    pub encoding: &'static str,
    /// Whether the body was cut at [`FetchOptions::max_bytes`].
    pub truncated: bool,
}

/// Why a page was not fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not an http or https address, or not an address at all.
    #[error("{url} is not an http or https address")]
    Scheme {
        /// The address.
        url: String,
    },
    /// The address resolves to a loopback, private, link-local or metadata address.
    #[error("{url} refused: {reason} (allow with --web-allow-private for a local deployment)")]
    Refused {
        /// The address asked (the redirect target when a redirect led there).
        url: String,
        /// Which rule refused it.
        reason: String,
    },
    /// The deadline passed before the page arrived.
    #[error("{url} timed out")]
    TimedOut {
        /// The address.
        url: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The address.
        url: String,
        /// The status.
        status: u16,
    },
    /// Not a web page (e.g. a PDF or an image).
    #[error("{url} is not a web page ({content_type})")]
    NotHtml {
        /// The address.
        url: String,
        /// What it is.
        content_type: String,
    },
    /// Too many redirects, or a redirect without a usable target.
    #[error("{url}: {reason}")]
    Redirect {
        /// The address.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection failed.
    #[error("{url}: {reason}")]
    Network {
        /// The address.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Fetches pages under [`FetchOptions`]; share one between threads.
pub struct PageFetcher {
    agent: ureq::Agent,
    options: FetchOptions,
}

impl std::fmt::Debug for PageFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageFetcher").field("options", &self.options).finish_non_exhaustive()
    }
}

impl PageFetcher {
    /// A fetcher with `options`.
    pub fn new(options: FetchOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(None)
            .user_agent("modelforge-web/0.1")
            .build();
        let resolver = GuardedResolver {
            allow_private: options.allow_private,
            allow_hosts: options.allow_hosts.clone(),
        };
        Self { agent: ureq::Agent::with_parts(config, DefaultConnector::default(), resolver), options }
    }

    /// The options in effect.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Fetches `url`, following redirects (each target checked like the first address), until
    /// `deadline`.
    pub fn fetch(&self, url: &str, deadline: Instant) -> Result<Page, FetchError> {
        let mut current = parse_http(url)?;
        for _ in 0..=self.options.max_redirects {
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = || FetchError::TimedOut { url: current.to_string() };
            if left.is_zero() {
                return Err(timed_out());
            }
            let mut response = self
                .agent
                .get(current.as_str())
                .header("Accept", "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5")
                .config()
                .timeout_global(Some(left))
                .build()
                .call()
                .map_err(|err| self.error(&current, err))?;
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response.headers().get("location").and_then(|v| v.to_str().ok());
                let Some(location) = location else {
                    return Err(FetchError::Redirect {
                        url: current.to_string(),
                        reason: format!("HTTP {status} without a Location"),
                    });
                };
                let next = current.join(location).map_err(|_| FetchError::Scheme { url: location.into() })?;
                current = parse_http(next.as_str())?;
                continue;
            }
            if status >= 400 {
                return Err(FetchError::Status { url: current.to_string(), status });
            }
            let content_type = response.body().mime_type().unwrap_or("text/html").to_owned();
            let header = response.headers().get("content-type").and_then(|v| v.to_str().ok());
            let header = header.map(str::to_owned);
            if !(content_type.starts_with("text/") || content_type.contains("xml")) {
                return Err(FetchError::NotHtml { url: current.to_string(), content_type });
            }
            let cap = self.options.max_bytes;
            let mut bytes = Vec::with_capacity(cap.min(64 * 1024));
            let reader = response.body_mut().with_config().limit(u64::MAX).reader();
            reader
                .take(cap as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| io_error(&current, &err, deadline))?;
            let truncated = bytes.len() > cap;
            bytes.truncate(cap);
            let (html, encoding) = decode_page(&bytes, header.as_deref());
            return Ok(Page { url: current.to_string(), html, encoding, truncated });
        }
        Err(FetchError::Redirect {
            url: url.to_owned(),
            reason: format!("more than {} redirects", self.options.max_redirects),
        })
    }

    fn error(&self, url: &url::Url, err: ureq::Error) -> FetchError {
        let url = url.to_string();
        match err {
            ureq::Error::Timeout(_) => FetchError::TimedOut { url },
            ureq::Error::Other(inner) => match inner.downcast::<Blocked>() {
                Ok(blocked) => FetchError::Refused { url, reason: blocked.0 },
                Err(other) => FetchError::Network { url, reason: other.to_string() },
            },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => FetchError::TimedOut { url },
            other => FetchError::Network { url, reason: other.to_string() },
        }
    }
}

fn io_error(url: &url::Url, err: &std::io::Error, deadline: Instant) -> FetchError {
    let text = err.to_string();
    if Instant::now() >= deadline || text.contains("timeout") || err.kind() == std::io::ErrorKind::TimedOut {
        FetchError::TimedOut { url: url.to_string() }
    } else {
        FetchError::Network { url: url.to_string(), reason: text }
    }
}

/// `url` if it is http or https with a host.
pub(crate) fn parse_http(url: &str) -> Result<url::Url, FetchError> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => Ok(parsed),
        _ => Err(FetchError::Scheme { url: url.to_owned() }),
    }
}

/// A resolution refused by the guard, carried through ureq as its `Other` error.
#[derive(Debug)]
struct Blocked(String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

/// Resolves like ureq, then keeps only public addresses (unless private ones are allowed).
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
    allow_hosts: Vec<String>,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = DefaultResolver::default().resolve(uri, config, timeout)?;
        let allowed = uri.authority().is_some_and(|a| {
            self.allow_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(a.as_str()) || h.eq_ignore_ascii_case(a.host()))
        });
        if self.allow_private || allowed {
            return Ok(resolved);
        }
        let mut kept = self.empty();
        let mut refused = None;
        for addr in &resolved {
            match not_public(addr.ip()) {
                None => kept.push(*addr),
                Some(why) => refused = Some(format!("{} is {why}", addr.ip())),
            }
        }
        match refused {
            Some(reason) if kept.is_empty() => Err(ureq::Error::Other(Box::new(Blocked(reason)))),
            _ => Ok(kept),
        }
    }
}

/// Why `ip` may not be fetched from by default, or `None` for a public address.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => not_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => not_public_v4(v4),
            None => not_public_v6(v6),
        },
    }
}

fn not_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_unspecified() || a == 0 || ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("not a unicast internet address")
    } else {
        None
    }
}

fn not_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast internet address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for (ip, why) in [
            ("127.0.0.1", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("172.16.0.1", "a private address"),
            ("192.168.1.1", "a private address"),
            ("100.64.0.1", "a private address"),
            ("169.254.169.254", "a cloud metadata address"),
            ("169.254.1.1", "a link-local address"),
            ("0.0.0.0", "not a unicast internet address"),
            ("::1", "a loopback address"),
            ("fd12::1", "a private address"),
            ("fe80::1", "a link-local address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("fd00:ec2::254", "a cloud metadata address"),
        ] {
            assert_eq!(not_public(ip.parse().unwrap()), Some(why), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert_eq!(not_public(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn only_http_and_https_are_fetched() {
        let fetcher = PageFetcher::new(FetchOptions::default());
        let soon = Instant::now() + Duration::from_secs(1);
        for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://x", "not a url"] {
            assert!(matches!(fetcher.fetch(url, soon), Err(FetchError::Scheme { .. })), "{url}");
        }
    }
}
