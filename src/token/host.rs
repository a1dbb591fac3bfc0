//! Hosting a PKCS#11 module out of process, for the agent: `p11-kit server --provider MODULE`
//! serves the module on a private socket, and this process loads p11-kit's client module in its
//! place, one client instance per hosted module. A call that hangs then hangs in the host: a
//! watchdog kills the host's process group once a call has run past its deadline, which makes the
//! call return (CKR_DEVICE_ERROR), and starts the host again for the next call. A module that
//! crashes takes only its host down.

use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

/// Milliseconds a call into a hosted module may take, instead of [`DEFAULT_CALL_DEADLINE`].
pub const CALL_DEADLINE_ENV: &str = "CERTAUTH_MODULE_CALL_TIMEOUT_MS";
/// How long a call into a hosted module may take before its host is killed: long enough for a
/// PIN typed on a PIN-pad reader.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(60);
/// Where Debian installs p11-kit's client module.
const CLIENT_MODULES: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
];
/// How long a host may take to start serving.
const START_PATIENCE: Duration = Duration::from_secs(10);
/// How often the watchdog looks at the calls under way.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Why a module could not be hosted.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("p11-kit's client module is not installed (Debian's p11-kit-modules)")]
    NoClientModule,
    #[error("cannot start `p11-kit server` or make its directory: {0}")]
    Spawn(std::io::Error),
    #[error("`p11-kit server` did not start serving within {} s", START_PATIENCE.as_secs())]
    NotServing,
    #[error("p11-kit's client module failed: {0}")]
    Client(String),
}

/// One hosted module: its `p11-kit server` and the client instance that talks to it.
pub struct Host {
    module: PathBuf,
    socket: PathBuf,
    server: Mutex<Server>,
    calls: Mutex<Calls>,
    /// Signalled when a call returns or a restart is over.
    changed: Condvar,
    /// Why the host was last killed, until it served a call again.
    failure: Mutex<Option<String>>,
    client: OnceLock<Pkcs11>,
}

/// The calls under way in a host.
#[derive(Default)]
struct Calls {
    /// Each call's number and start.
    under_way: Vec<(u64, Instant)>,
    next: u64,
    /// No call starts while the host is being restarted.
    restarting: bool,
}

/// A running `p11-kit server`, under a shell that kills the server's whole process group when
/// this process's end of its stdin closes: a host never outlives the agent, even one killed
/// with SIGKILL.
struct Server {
    guardian: Child,
    _lifeline: Option<ChildStdin>,
}

/// Marks a call into a hosted module, from its start until it is dropped.
pub struct CallGuard {
    host: Arc<Host>,
    id: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        lock(&self.host.calls)
            .under_way
            .retain(|(id, _)| *id != self.id);
        self.host.changed.notify_all();
    }
}

/// Every host of this process, for the watchdog and for [`call`].
fn hosts() -> &'static Mutex<Vec<Arc<Host>>> {
    static HOSTS: OnceLock<Mutex<Vec<Arc<Host>>>> = OnceLock::new();
    HOSTS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Client instances read their server's address from the environment when they are made: one
/// at a time.
static CLIENT_TURN: Mutex<()> = Mutex::new(());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The call deadline `CERTAUTH_MODULE_CALL_TIMEOUT_MS` sets, else [`DEFAULT_CALL_DEADLINE`].
pub fn call_deadline() -> Duration {
    std::env::var(CALL_DEADLINE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_CALL_DEADLINE, Duration::from_millis)
}

/// Marks a call into the module at `module` if it is hosted (`None` if it is not): the watchdog
/// kills its host should the call outlast the deadline.
pub fn call(module: &Path) -> Option<CallGuard> {
    let host = lock(hosts()).iter().find(|h| h.module == module).cloned()?;
    Some(Host::enter(host))
}

/// Where hosted modules' sockets go, once [`enable`] was called: a private directory.
static SOCKET_DIR: OnceLock<PathBuf> = OnceLock::new();

/// From now on, modules this process loads are hosted out of process, with their sockets in the
/// private directory `dir`; an error, and nothing changes, when p11-kit's server or client module
/// is missing.
pub fn enable(dir: &Path) -> Result<(), HostError> {
    client_module()?;
    Command::new("p11-kit")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(HostError::Spawn)?;
    let _ = SOCKET_DIR.set(dir.to_owned());
    Ok(())
}

/// p11-kit's client module.
fn client_module() -> Result<&'static Path, HostError> {
    CLIENT_MODULES
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or(HostError::NoClientModule)
}

/// As [`enable`], with the sockets in a new private directory that lasts as long as the value
/// returned.
pub fn enable_private() -> Result<tempfile::TempDir, HostError> {
    let dir = tempfile::Builder::new()
        .prefix("certauth-modules-")
        .tempdir()
        .map_err(HostError::Spawn)?;
    enable(dir.path())?;
    Ok(dir)
}

/// The directory hosted modules' sockets go in, when hosting is enabled.
pub fn enabled() -> Option<&'static Path> {
    SOCKET_DIR.get().map(PathBuf::as_path)
}

/// Hosts the module at `module` with its socket in the private directory `dir`, and returns the
/// initialised client instance that stands for it.
pub fn host(module: &Path, dir: &Path) -> Result<Pkcs11, HostError> {
    let client_module = client_module()?;
    let index = lock(hosts()).len();
    let socket = dir.join(format!("module-{index}.sock"));
    let server = start_server(module, &socket)?;
    let host = Arc::new(Host {
        module: module.to_owned(),
        socket,
        server: Mutex::new(server),
        calls: Mutex::new(Calls::default()),
        changed: Condvar::new(),
        failure: Mutex::new(None),
        client: OnceLock::new(),
    });
    let client = host.new_client(client_module)?;
    let _ = host.client.set(client.clone());
    lock(hosts()).push(host);
    start_watchdog();
    Ok(client)
}

/// Why the host of `module` was last killed, if it has not served since.
pub fn failure(module: &Path) -> Option<String> {
    let hosts = lock(hosts());
    let host = hosts.iter().find(|h| h.module == module)?;
    let failure = lock(&host.failure).clone();
    failure
}

/// Starts `p11-kit server` for `module` on `socket`, in a process group of its own (the server
/// starts a process per connection) under its guardian shell, and waits until it serves.
fn start_server(module: &Path, socket: &Path) -> Result<Server, HostError> {
    use std::os::unix::process::CommandExt;
    let _ = std::fs::remove_file(socket);
    // The shell waits for its stdin to close, then kills its process group: itself, the
    // server and the server's connections.
    let mut guardian = Command::new("sh")
        .args([
            "-c",
            "p11-kit server --foreground --provider \"$0\" --name \"$1\" pkcs11: >/dev/null & \
             while read -r _; do :; done; kill -KILL 0",
        ])
        .arg(module)
        .arg(socket)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(HostError::Spawn)?;
    let lifeline = guardian.stdin.take();
    let mut server = Server {
        guardian,
        _lifeline: lifeline,
    };
    let started = Instant::now();
    while !socket.exists() {
        if started.elapsed() > START_PATIENCE || matches!(server.guardian.try_wait(), Ok(Some(_))) {
            server.stop();
            return Err(HostError::NotServing);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}

impl Server {
    /// Kills the whole process group and reaps the guardian.
    fn stop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.guardian);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.guardian.kill();
        let _ = self.guardian.wait();
    }
}

impl Host {
    fn enter(host: Arc<Self>) -> CallGuard {
        let id = {
            let calls = lock(&host.calls);
            let mut calls = host
                .changed
                .wait_while(calls, |c| c.restarting)
                .unwrap_or_else(|p| p.into_inner());
            calls.next += 1;
            let id = calls.next;
            calls.under_way.push((id, Instant::now()));
            id
        };
        CallGuard { host, id }
    }

    /// A client instance of `client_module` for this host's socket, initialised.
    fn new_client(&self, client_module: &Path) -> Result<Pkcs11, HostError> {
        let client = {
            let _turn = lock(&CLIENT_TURN);
            let address = format!("unix:path={}", self.socket.display());
            std::env::set_var("P11_KIT_SERVER_ADDRESS", address);
            let made = Pkcs11::new(client_module);
            std::env::remove_var("P11_KIT_SERVER_ADDRESS");
            made.map_err(|e| HostError::Client(e.to_string()))?
        };
        client
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| HostError::Client(e.to_string()))?;
        Ok(client)
    }

    /// The oldest call under way, if it has run past `deadline`.
    fn overdue(&self, deadline: Duration) -> Option<Duration> {
        let calls = lock(&self.calls);
        let oldest = calls.under_way.iter().map(|(_, s)| s.elapsed()).max()?;
        (oldest > deadline).then_some(oldest)
    }

    /// Kills the host (so that the overdue call returns), then, once every call under way has
    /// returned, starts a new one and connects the client instance to it again.
    fn restart(&self, why: String) {
        tracing::warn!(module = %self.module.display(), "{why}; restarting its host");
        *lock(&self.failure) = Some(why);
        lock(&self.calls).restarting = true;
        lock(&self.server).stop();
        let calls = lock(&self.calls);
        let calls = self
            .changed
            .wait_timeout_while(calls, START_PATIENCE, |c| !c.under_way.is_empty())
            .map_or_else(|p| p.into_inner().0, |(calls, _)| calls);
        drop(calls);
        if let Some(client) = self.client.get() {
            let _ = client.clone().finalize();
        }
        match start_server(&self.module, &self.socket) {
            Ok(server) => *lock(&self.server) = server,
            Err(e) => {
                tracing::warn!(module = %self.module.display(), error = %e, "cannot restart the module's host")
            }
        }
        if let Some(Err(e)) = self
            .client
            .get()
            .map(|c| c.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)))
        {
            tracing::warn!(module = %self.module.display(), error = %e, "cannot reconnect to the module's host");
        }
        lock(&self.calls).restarting = false;
        self.changed.notify_all();
    }
}

/// Stops every host (when the agent stops).
pub fn stop_all() {
    for host in lock(hosts()).iter() {
        lock(&host.server).stop();
        let _ = std::fs::remove_file(&host.socket);
    }
}

/// Marks the host of `module` as serving again (its failure is forgotten).
pub fn served(module: &Path) {
    if let Some(host) = lock(hosts()).iter().find(|h| h.module == module) {
        lock(&host.failure).take();
    }
}

/// Starts the watchdog thread, once per process.
fn start_watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let deadline = call_deadline();
        let spawned = std::thread::Builder::new()
            .name("pkcs11-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH_EVERY);
                let hosts: Vec<Arc<Host>> = lock(hosts()).clone();
                for host in hosts {
                    if let Some(took) = host.overdue(deadline) {
                        let why = format!(
                            "a call into the module did not return within {} s (it had run {} s)",
                            deadline.as_secs_f64(),
                            took.as_secs()
                        );
                        host.restart(why);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the PKCS#11 watchdog; a module that hangs will not be stopped");
        }
    });
}
