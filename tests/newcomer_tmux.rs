//! A newcomer's path, followed literally: start `certauth demo --keep --serve` (and
//! `certauth-verifier serve` with no arguments), copy the sign-in lines they print, paste them into
//! a real shell in tmux, and reach "Signed in" with no other knowledge; then Ctrl-C, after which
//! every process they started is gone and their temporary directory removed. The binaries are the
//! ones `cargo test` already built: nothing is built here.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::lines::Lines;
use support::programs::{CERTAUTH, VERIFIER};
use support::tmux::Tmux;

/// What a demo run may take on a busy 2-core machine: provisioning, CRLs, four sign-ins.
const START: Duration = Duration::from_secs(120);

/// The machine's state kept out, as the Woodgrove helpers do ([`support::programs::isolate`]):
/// an empty config (so the remembered choices go beside it too), no SoftHSM of the machine's,
/// and `tmp` as the temporary directory so what is left behind can be seen.
fn isolate(command: &mut Command, home: &Path, tmp: &Path) {
    support::programs::isolate(command)
        .env("CERTAUTH_CONFIG", home.join("config.toml"))
        .env("TMPDIR", tmp)
        .env_remove("CERTAUTH_SOFTHSM_MODULE")
        .env_remove("SOFTHSM2_CONF");
}

/// A home of the test's own: an empty config file (private, as certauth wants it) and a directory
/// to be the temporary one.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        support::write_private(&dir.path().join("config.toml"), "");
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmp(&self) -> std::path::PathBuf {
        self.dir.path().join("tmp")
    }
}

/// A plain shell in a private tmux server, which starts with the test's environment.
struct Shell {
    tmux: Tmux,
}

impl Shell {
    fn start(name: &str, home: &Home) -> Self {
        let tmux = Tmux::start(
            &format!("newcomer-{name}"),
            200,
            "env PS1='$ ' bash --norc --noprofile",
            |tmux| isolate(tmux, home.path(), &home.tmp()),
        );
        Self {
            tmux: tmux.with_scrollback(),
        }
    }

    /// Pastes a printed sign-in line, waits for its outcome, and checks its exit code.
    fn sign_in(&self, line: &str, username: &str) -> String {
        let before = exit_codes(&self.tmux.screen()).len();
        self.tmux.paste_and_enter(line);
        self.tmux
            .wait_for(&format!("Signed in as {username}"), Duration::from_secs(60));
        self.tmux.paste_and_enter("echo EXIT=$?");
        self.tmux
            .poll("an exit code", Duration::from_secs(30), |screen| {
                let exits = exit_codes(screen);
                (exits.len() > before).then(|| {
                    assert_eq!(exits.last().map(String::as_str), Some("0"), "{screen}");
                    screen.to_owned()
                })
            })
    }
}

/// The exit codes a screen shows: the output lines of `echo EXIT=$?` (the typed command itself
/// is on a line of its own, after the prompt).
fn exit_codes(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.trim().strip_prefix("EXIT="))
        .map(str::to_owned)
        .collect()
}

/// A program started in a process group of its own, as a shell starts a foreground job, so that
/// Ctrl-C can be sent the way a terminal sends it: SIGINT to the whole group.
struct Job {
    child: Child,
    stdout: Lines,
}

impl Job {
    fn start(program: &str, args: &[&str], home: &Home) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        isolate(&mut command, home.path(), &home.tmp());
        let mut child = command.spawn().unwrap();
        let stdout = Lines::new(child.stdout.take().unwrap());
        Self { child, stdout }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every process in the job's group, and every descendant of its leader: what it started.
    fn processes(&self) -> Vec<u32> {
        let mut found = vec![self.pid()];
        let mut grew = true;
        while grew {
            grew = false;
            for (pid, parent, group) in all_processes() {
                let belongs = group == self.pid() || found.contains(&parent);
                if belongs && !found.contains(&pid) {
                    found.push(pid);
                    grew = true;
                }
            }
        }
        found
    }

    /// Ctrl-C, as a terminal sends it, then the job's exit; every process it started must be gone.
    fn interrupt_and_check(&mut self, started: &[u32]) {
        let group = format!("-{}", self.pid());
        let status = Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = support::rig::exit_within(&mut self.child, Duration::from_secs(30))
            .expect("no exit after Ctrl-C");
        assert!(exit.success(), "{exit:?}");
        let mut left = Vec::new();
        let all_gone =
            support::came_true(Duration::from_secs(10), Duration::from_millis(50), || {
                left = started.iter().copied().filter(|pid| alive(*pid)).collect();
                left.is_empty()
            });
        assert!(all_gone, "still running after Ctrl-C: {left:?}");
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let _ = self.child.wait();
        }
    }
}

/// (pid, parent pid, process group) of every process on the machine.
fn all_processes() -> Vec<(u32, u32, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(pid), Some(parent), Some(group)) = (
            head.split_whitespace().next().and_then(|p| p.parse().ok()),
            fields.get(1).and_then(|p| p.parse().ok()),
            fields.get(2).and_then(|p| p.parse().ok()),
        ) else {
            continue;
        };
        found.push((pid, parent, group));
    }
    found
}

/// Whether `pid` still runs (a zombie counts as gone: it runs nothing).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The printed sign-in line for `username`, taken verbatim (without its indentation).
fn printed_line<'a>(lines: &'a [String], username: &str) -> &'a str {
    let found: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.contains(" sign-in ") && l.contains(&format!("--username {username} ")))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one sign-in line for {username}:\n{}",
        lines.join("\n")
    );
    found[0]
}

#[test]
fn the_demo_serves_and_its_printed_sign_in_lines_work_when_pasted() {
    let home = Home::new();
    let mut demo = Job::start(CERTAUTH, &["demo", "--keep", "--serve"], &home);
    demo.stdout
        .wait_for("the last line of the serving notes", START, |l| {
            l.trim_start().starts_with("Ctrl-C (or SIGTERM) stops")
        });
    let printed = demo.stdout.seen.clone();
    let dir = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("directory"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(Path::new(&dir).starts_with(home.tmp()), "{dir}");
    let next = printed
        .iter()
        .position(|l| l.starts_with("Next"))
        .unwrap_or_else(|| panic!("no Next:\n{}", printed.join("\n")));
    let alice = printed_line(&printed[next..], "alice@woodgrove.com");
    let bob = printed_line(&printed[next..], "bob@woodgrove.com");
    for line in [alice, bob] {
        assert!(line.contains("--pin env:"), "{line}");
    }
    let started = demo.processes();
    assert!(started.len() >= 2, "the demo and its verifier: {started:?}");

    let shell = Shell::start("demo", &home);
    let done = shell.sign_in(alice, "alice@woodgrove.com");
    assert!(done.contains("strength          singleFactor"), "{done}");
    let done = shell.sign_in(bob, "bob@woodgrove.com");
    assert!(
        done.contains("certificate       Bob Kelly <bob@woodgrove.com> on `Woodgrove Bob`"),
        "{done}"
    );
    assert!(!done.contains("Choose a certificate"), "{done}");

    demo.interrupt_and_check(&started);
    demo.stdout
        .wait_for("the stop notice", Duration::from_secs(5), |l| {
            l.starts_with("Stopped the verifier and the CRL server and removed ")
        });
    assert!(!Path::new(&dir).exists(), "{dir} left behind");
    let left = support::walk(&home.tmp());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_line_that_serve_prints_works_when_pasted() {
    let home = Home::new();
    let mut serve = Job::start(VERIFIER, &["serve"], &home);
    let (_, banner) = serve.stdout.wait_for("the banner", START, |l| {
        l.starts_with("certauth-verifier is serving the tenant in ")
    });
    let dir = banner
        .trim_start_matches("certauth-verifier is serving the tenant in ")
        .to_owned();
    assert!(Path::new(&dir).starts_with(home.tmp()), "{dir}");
    let (_, line) = serve
        .stdout
        .wait_for("a sign-in line", START, |l| l.contains(" sign-in "));
    let printed = serve.stdout.seen.clone();
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("Sign in") && l.contains("demo")),
        "the PINs are said to be demo PINs:\n{}",
        printed.join("\n")
    );
    assert!(line.contains("--pin env:"), "{line}");
    let username = line
        .split_whitespace()
        .skip_while(|w| *w != "--username")
        .nth(1)
        .unwrap()
        .to_owned();
    let started = serve.processes();

    let shell = Shell::start("serve", &home);
    shell.sign_in(line.trim(), &username);

    serve.interrupt_and_check(&started);
    assert!(!Path::new(&dir).exists(), "{dir} left behind");
    let left = support::walk(&home.tmp());
    assert!(left.is_empty(), "left behind: {left:?}");
}
