//! `certauth-verifier serve`: the certauth mutual-TLS listener and the Graph-shaped admin API, over
//! the SQLite store. Listeners take a bound socket and a shutdown future; a shutdown stops
//! accepting and lets requests in flight finish.

pub mod admin;
mod admin_cas;
mod admin_groups;
pub mod certauth;
pub mod graph_sign_in;
mod limits;
pub mod odata;
pub mod settings;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::decide::{Engine, Tenant};
use super::jwt::JwtSigner;
use super::revocation::cache::CrlCache;
use super::revocation::source::CrlSource;
use super::store::{Store, StoreError, StoredProblem};
use crate::x509::user_ids::SerialOrder;
use tls::ServerIdentity;

/// How long a client may take over its TLS handshake or its request headers.
const SLOW_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything the listeners share.
pub struct App {
    pub store: Arc<Store>,
    pub jwt: JwtSigner,
    tenant: RwLock<Arc<Tenant>>,
    /// Held across a reload and its swap, so an older read never replaces a newer one.
    reloading: std::sync::Mutex<Vec<StoredProblem>>,
    crls: Arc<CrlCache>,
    identity: ServerIdentity,
    certauth_tls: RwLock<Arc<rustls::ServerConfig>>,
    pub serial_order: SerialOrder,
    /// Lifetime of issued tokens.
    pub token_lifetime: Duration,
    /// Limits and retention.
    pub settings: settings::Settings,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listening: {0}")]
    Io(#[from] std::io::Error),
}

pub use crate::verifier::stamps::now_text;

impl App {
    pub fn new(
        store: Store,
        identity: ServerIdentity,
        crls: CrlSource,
        settings: settings::Settings,
    ) -> Result<Self, ServeError> {
        let store = Arc::new(store);
        let jwt = JwtSigner::load_or_create(&store, &now_text())?;
        let loaded = store.tenant()?;
        report(&loaded.problems, &[]);
        let tenant = Arc::new(loaded.tenant);
        let certauth_tls = tls::certauth_config(&identity, &tenant)?;
        Ok(Self {
            crls: CrlCache::persistent(crls, store.clone(), settings.crl_failure_memory),
            store,
            jwt,
            tenant: RwLock::new(tenant),
            reloading: std::sync::Mutex::new(loaded.problems),
            identity,
            certauth_tls: RwLock::new(certauth_tls),
            serial_order: SerialOrder::default(),
            token_lifetime: Duration::from_secs(3600),
            settings,
        })
    }

    /// An engine over the tenant as it is now.
    pub fn engine(&self) -> Engine {
        let tenant = self
            .tenant
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Engine {
            tenant,
            crls: self.crls.clone(),
            serial_order: self.serial_order,
        }
    }

    /// Re-reads the tenant after an admin change, and the TLS hints with it.
    pub fn refresh(&self) -> Result<(), ServeError> {
        let mut problems = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let loaded = self.store.tenant()?;
        report(&loaded.problems, &problems);
        *problems = loaded.problems;
        let tenant = Arc::new(loaded.tenant);
        let tls = tls::certauth_config(&self.identity, &tenant)?;
        *self
            .tenant
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tenant;
        *self
            .certauth_tls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tls;
        Ok(())
    }

    fn certauth_tls(&self) -> Arc<rustls::ServerConfig> {
        self.certauth_tls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Names each stored row that cannot load (once, not again at every reload while it stays).
fn report(problems: &[StoredProblem], already: &[StoredProblem]) {
    for problem in problems.iter().filter(|p| !already.contains(p)) {
        tracing::error!(table = problem.table, id = %problem.id, "{problem}");
    }
}

/// What a handler knows of its connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub client_address: SocketAddr,
    /// The client's certificates, leaf first (certauth listener only).
    pub client_chain: Vec<CertificateDer<'static>>,
}

/// Serves both listeners until `shutdown` completes, then drains.
pub async fn serve(
    app: Arc<App>,
    certauth: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let admin_tls = tls::admin_config(&app.identity)?;
    let certauth_router = certauth::router(app.clone());
    let admin_router = admin::router(app.clone());
    let certauth_app = app.clone();
    let certauth_task = tokio::spawn(accept_loop(
        "certauth",
        certauth,
        move || certauth_app.certauth_tls(),
        certauth_router,
        app.settings.clone(),
        stopped.clone(),
    ));
    let admin_task = tokio::spawn(accept_loop(
        "admin",
        admin,
        move || admin_tls.clone(),
        admin_router,
        app.settings.clone(),
        stopped,
    ));
    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop.send(true);
    let _ = certauth_task.await;
    let _ = admin_task.await;
    Ok(())
}

/// Accepts connections and serves each on its own task until `stopped`, then waits for those in
/// flight. A task is detached and frees itself when its connection ends (a `JoinSet` drained only
/// at shutdown would keep every finished one); the semaphore counts the open connections, caps
/// them, and tells the drain when the last one is done.
async fn accept_loop(
    name: &'static str,
    listener: TcpListener,
    tls: impl Fn() -> Arc<rustls::ServerConfig> + Send + 'static,
    router: Router,
    settings: settings::Settings,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    // `acquire_many` (the drain) counts in u32.
    let limit = settings
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let open = Arc::new(Semaphore::new(limit));
    let mut failures = limits::AcceptFailures::new(name);
    let mut refusals = limits::Refusals::new(name, limit);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => break,
        };
        let (stream, client_address) = match accepted {
            Ok(accepted) => {
                failures.accepted();
                accepted
            }
            Err(e) if limits::only_that_connection(&e) => {
                tracing::debug!(listener = name, error = %e, "a client gave up before its connection was accepted");
                continue;
            }
            Err(e) => {
                // Out of descriptors (EMFILE) and the like: retrying at once would spin and log
                // without end, and the condition clears only as open connections close.
                let pause = failures.failed(&e);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    _ = stopped.changed() => break,
                }
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Full: closing at once tells the client plainly, where leaving it in the backlog
            // would look like a hang.
            drop(stream);
            refusals.refused();
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls());
        let router = router.clone();
        let body_timeout = settings.body_timeout;
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let _open = permit;
            serve_connection(
                stream,
                client_address,
                acceptor,
                router,
                body_timeout,
                stopped,
            )
            .await;
        });
    }
    // Requests in flight finish; idle keep-alive connections close. Every permit back means every
    // connection task has ended.
    let everyone = u32::try_from(limit).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, open.acquire_many(everyone)).await;
}

/// One connection: the TLS handshake, then HTTP/1 until the client is done or the server stops,
/// when the request in flight finishes first.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    client_address: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    body_timeout: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(SLOW_CLIENT_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(client = %client_address, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(client = %client_address, "TLS handshake timed out");
            return;
        }
    };
    let connection = Connection {
        client_address,
        client_chain: tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    };
    let service = limits::body_deadline(router.layer(axum::Extension(connection)), body_timeout);
    let builder = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(SLOW_CLIENT_TIMEOUT)
        .to_owned();
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(client = %client_address, error = %e, "connection ended");
            }
        }
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
