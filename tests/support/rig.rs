//! The PC/SC test rig: a private pcscd with two vpcd readers, inside `unshare --mount --net --pid
//! --fork` namespaces so it never meets the machine's own pcscd (there can be one per machine).
//!
//! pcscd is PID 1 of the rig's PID namespace, and is stopped by its PID. Test programs join the
//! mount and network namespaces with `nsenter`, which execs in place, so every PID the test holds
//! is the program's own and is stopped by that PID.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// vpcd's first reader port (0x8C7B); the second reader is on the next port.
pub const VPCD_PORT: u16 = 35963;
pub const READER_0: &str = "Virtual PCD 00 00";
pub const READER_1: &str = "Virtual PCD 00 01";
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// How the rig's mount namespace keeps its mounts to itself, if it can be made here.
///
/// `private` is the norm. In a chroot whose root is not a mount point (a freshly bootstrapped
/// build root, say), unshare cannot change propagation; there, leaving it unchanged is just as
/// isolated as long as no mount on the machine is shared.
pub fn propagation() -> Option<&'static str> {
    let works = |propagation: &str| {
        Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--propagation",
                propagation,
            ])
            .arg("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("private") {
        return Some("private");
    }
    let nothing_shared = std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|mounts| !mounts.contains(" shared:"));
    (nothing_shared && works("unchanged")).then_some("unchanged")
}

/// Returns `false` (after saying so loudly) when the rig cannot run here; in CI it must run.
pub fn can_run(test: &str) -> bool {
    if propagation().is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: `unshare --mount --net --pid` is not permitted, and CI must run the PC/SC rig"
        );
    }
    eprintln!(
        "\n*** SKIPPED {test}: `unshare --mount --net --pid` is not permitted here, so the PC/SC rig \
         cannot run. Run the tests as root (CI does). ***\n"
    );
    false
}

pub struct PcscRig {
    /// `unshare`, which made the namespaces and waits for pcscd; commands enter its namespaces.
    unshare: Child,
    /// pcscd, PID 1 of the rig's PID namespace: when it goes, so does everything started in it.
    pcscd_pid: u32,
    _dir: tempfile::TempDir,
}

impl PcscRig {
    /// Starts pcscd with a private reader config in fresh namespaces and waits until it listens.
    pub fn start() -> Self {
        assert!(
            Path::new(VPCD_DRIVER).exists(),
            "vsmartcard-vpcd is not installed"
        );
        let dir = tempfile::tempdir().unwrap();
        let readers = dir.path().join("reader.conf.d");
        std::fs::create_dir(&readers).unwrap();
        std::fs::write(
            readers.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x{VPCD_PORT:04X}\n\
                 LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{VPCD_PORT:04X}\n"
            ),
        )
        .unwrap();
        let unshare = Command::new("unshare")
            .args(["--mount", "--net", "--pid", "--fork", "--kill-child"])
            .arg("--propagation")
            .arg(isolating_propagation())
            .args(["--", "sh", "-c"])
            .arg(
                "set -e; PATH=$PATH:/usr/sbin:/sbin; mkdir -p /run/pcscd; \
                 mount -t tmpfs tmpfs /run/pcscd; ip link set lo up; exec pcscd -f -c \"$1\"",
            )
            .arg("sh")
            .arg(&readers)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pcscd_pid = forked_child(unshare.id());
        let rig = Self {
            unshare,
            pcscd_pid,
            _dir: dir,
        };
        rig.wait_until_listening();
        rig
    }

    fn wait_until_listening(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let ready = self
                .command("test")
                .args(["-S", "/run/pcscd/pcscd.comm"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the rig's pcscd did not start within 10 s");
    }

    /// A command that runs inside the rig's namespaces.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.enter(&["--mount", "--net"], program)
    }

    /// A command that sees the rig's pcscd (its mount namespace) but the host's network, so it
    /// can reach servers on the host's loopback: the agent signing in, for one.
    pub fn command_on_host_network(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.enter(&["--mount"], program)
    }

    fn enter(&self, namespaces: &[&str], program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("--target")
            .arg(self.unshare.id().to_string())
            .args(namespaces)
            // --root and --wd: entering a mount namespace resets both to the namespace's, which
            // inside a chroot is not where the rig lives.
            .args(["--root", "--wd", "--"])
            .arg(program);
        command
    }
}

impl Drop for PcscRig {
    fn drop(&mut self) {
        self.stop_pcscd();
    }
}

impl PcscRig {
    /// Stops pcscd (and with it the rig's namespaces); the rig is unusable afterwards.
    pub fn stop_pcscd(&mut self) {
        // unshare ignores SIGTERM while it waits, so pcscd gets it and unshare then exits; should
        // pcscd hang, SIGKILL to unshare takes pcscd with it (--kill-child).
        if matches!(self.unshare.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pcscd_pid.to_string()])
                .status();
        }
        if exit_within(&mut self.unshare, Duration::from_secs(5)).is_none() {
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}

/// The PID of the child `unshare --fork` (PID `parent`) started, once it exists.
fn forked_child(parent: u32) -> u32 {
    let children = format!("/proc/{parent}/task/{parent}/children");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let listed = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = listed.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("unshare (PID {parent}) started no child within 5 s");
}

/// A child process stopped (by [`stop`]) when this goes out of scope, even when a test fails.
pub struct Stopping(pub Child);

impl Drop for Stopping {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

/// Stops a child by its PID: SIGTERM, then SIGKILL if it lingers; always reaped.
pub fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    if exit_within(child, Duration::from_secs(5)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Waits up to `patience` for `child` to exit (reaping it); its status if it did.
pub fn exit_within(child: &mut Child, patience: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` in a mount namespace whose /run/pcscd is empty: no smart card service.
pub fn without_pcscd(program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            isolating_propagation(),
            "--",
            "sh",
            "-c",
        ])
        .arg("set -e; mkdir -p /run/pcscd; mount -t tmpfs tmpfs /run/pcscd; exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args);
    command
}

fn isolating_propagation() -> &'static str {
    propagation().expect("callers check can_run first")
}
