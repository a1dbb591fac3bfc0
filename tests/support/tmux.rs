//! A private tmux server for the tests that drive a real terminal: start a program in it, send
//! keys or paste, read the screen, and wait for what should appear, with a deadline. The server
//! is killed (by its own command, on its own socket) when dropped.

use std::process::Command;
use std::time::Duration;

pub struct Tmux {
    socket: String,
    /// Whether the screen read includes the scrollback, not just what is visible.
    scrollback: bool,
}

impl Tmux {
    /// A server on a socket of its own (`name` and this process), with one `width`×50 window
    /// running the shell line `command`; `environment` sets what the server, and so `command`,
    /// starts with. It reads no tmux config.
    pub fn start(
        name: &str,
        width: u16,
        command: &str,
        environment: impl FnOnce(&mut Command),
    ) -> Self {
        let socket = format!("certauth-test-{name}-{}", std::process::id());
        let mut tmux = Command::new("tmux");
        tmux.args(["-L", &socket, "-f", "/dev/null"])
            .args(["new-session", "-d", "-x", &width.to_string(), "-y", "50"])
            .arg(command);
        environment(&mut tmux);
        let status = tmux
            .status()
            .expect("tmux is needed for the terminal tests (apt-get install tmux)");
        assert!(status.success());
        Self {
            socket,
            scrollback: false,
        }
    }

    /// The same, reading the whole scrollback as the screen from now on, so that nothing that
    /// scrolled away is missed.
    pub fn with_scrollback(mut self) -> Self {
        self.scrollback = true;
        self
    }

    /// `tmux` talking to this server.
    pub fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// What the window shows (and, [`Self::with_scrollback`], what scrolled away), with wrapped
    /// lines joined.
    pub fn screen(&self) -> String {
        let mut capture = self.command();
        capture.args(["capture-pane", "-p", "-J"]);
        if self.scrollback {
            capture.args(["-S", "-"]);
        }
        let out = capture.args(["-t", "0"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Presses `keys` (tmux key names, or text typed as is).
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "0"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Pastes `text` as a terminal paste would (tmux's paste buffer), then presses Enter.
    pub fn paste_and_enter(&self, text: &str) {
        let status = self
            .command()
            .args(["set-buffer", "-b", "test-paste", "--", text])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self
            .command()
            .args(["paste-buffer", "-d", "-b", "test-paste", "-t", "0"])
            .status()
            .unwrap();
        assert!(status.success());
        self.keys(&["Enter"]);
    }

    /// The screen once it shows `what`; panics with the screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration) -> String {
        self.poll(&format!("`{what}`"), timeout, |screen| {
            screen.contains(what).then(|| screen.to_owned())
        })
    }

    /// What `found` makes of the screen once it makes something of it, reading the screen every
    /// 50 ms; panics with `what` and the last screen after `timeout`.
    pub fn poll<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let (mut screen, mut result) = (String::new(), None);
        let seen = super::came_true(timeout, Duration::from_millis(50), || {
            screen = self.screen();
            result = found(&screen);
            result.is_some()
        });
        assert!(
            seen,
            "{what} never appeared within {timeout:?}; the screen:\n{screen}"
        );
        result.unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}
