//! Where CRL bytes come from: files given on the command line (offline evaluation), or each CA's
//! HTTP URL, fetched within Entra's limits (20 MB and 10 s on the interactive path).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::pki::crl::CrlKind;
use crate::verifier::trust::TrustedCa;

/// Download limits.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for FetchLimits {
    /// Entra's interactive limits for the public cloud.
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why no CRL could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the CRL at {url} is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: usize },
    #[error("downloading {url} took longer than {} s", *millis as f64 / 1000.0)]
    TimedOut { url: String, millis: u64 },
    #[error("no {kind} was given for `{ca}`, and fetching over the network is off")]
    NotProvided { ca: String, kind: CrlKind },
}

/// Files first (by the SKI of the CA that signed them), then HTTP if allowed.
#[derive(Debug)]
pub struct CrlSource {
    files: Mutex<HashMap<(String, CrlKind), Vec<u8>>>,
    http: Option<reqwest::Client>,
    limits: FetchLimits,
    fetches: AtomicUsize,
    /// URL prefixes fetched from elsewhere (a lab publishing a tenant's CRLs on loopback).
    redirects: Vec<(String, String)>,
}

impl CrlSource {
    /// Fetches every CRL over HTTP.
    pub fn http(limits: FetchLimits) -> Self {
        crate::crypto_provider::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(limits.timeout)
            .build()
            .ok();
        Self {
            files: Mutex::new(HashMap::new()),
            http: client,
            limits,
            fetches: AtomicUsize::new(0),
            redirects: Vec::new(),
        }
    }

    /// Fetches URLs starting with `from` from `to` instead (same path after the prefix).
    pub fn redirect(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.redirects.push((from.into(), to.into()));
        self
    }

    /// Uses only CRLs given with [`CrlSource::provide`].
    pub fn offline() -> Self {
        Self {
            files: Mutex::new(HashMap::new()),
            http: None,
            limits: FetchLimits::default(),
            fetches: AtomicUsize::new(0),
            redirects: Vec::new(),
        }
    }

    /// Supplies a CRL for the CA with this SKI (lowercase hex), replacing any before.
    pub fn provide(&self, ca_ski: &str, kind: CrlKind, der: Vec<u8>) {
        if let Ok(mut files) = self.files.lock() {
            files.insert((ca_ski.to_ascii_lowercase(), kind), der);
        }
    }

    /// How many CRLs were fetched or read, for tests of the cache.
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The CRL of `kind` for `ca`.
    pub async fn get(&self, ca: &TrustedCa, kind: CrlKind) -> Result<Vec<u8>, FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let provided = self
            .files
            .lock()
            .ok()
            .and_then(|files| files.get(&(ca.ski.clone(), kind)).cloned());
        if let Some(der) = provided {
            return Ok(der);
        }
        let url = match kind {
            CrlKind::Base => ca.crl_url.as_deref(),
            CrlKind::Delta => ca.delta_crl_url.as_deref(),
        };
        match (url, &self.http) {
            (Some(url), Some(client)) => {
                let fetched = self
                    .redirects
                    .iter()
                    .find_map(|(from, to)| {
                        url.strip_prefix(from.as_str())
                            .map(|rest| format!("{to}{rest}"))
                    })
                    .unwrap_or_else(|| url.to_owned());
                download(client, &fetched, self.limits).await
            }
            _ => Err(FetchError::NotProvided {
                ca: ca.info.subject.clone(),
                kind,
            }),
        }
    }
}

async fn download(
    client: &reqwest::Client,
    url: &str,
    limits: FetchLimits,
) -> Result<Vec<u8>, FetchError> {
    let unreachable = |e: reqwest::Error| FetchError::Unreachable {
        url: url.to_owned(),
        reason: e.without_url().to_string(),
    };
    let work = async {
        let mut response = client.get(url).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: limits.max_bytes,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limits.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > limits.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| FetchError::TimedOut {
            url: url.to_owned(),
            millis: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        })?
}
