//! Which agent a command talks to (`--agent-socket`, else the default socket), connecting to it
//! with the command line's advice when none answers.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use certauth::agent::client::{self, AgentConnection};

use crate::cli::AgentSocketArgs;

/// The default socket; `flag` is the option that names another one on the command at hand.
pub fn default_socket(flag: &str) -> anyhow::Result<PathBuf> {
    client::default_socket().ok_or_else(|| {
        anyhow!("XDG_RUNTIME_DIR is not set, so there is no private place for the agent's socket; give one with {flag}")
    })
}

/// The socket `args` names, else the default one.
fn socket_path(args: &AgentSocketArgs) -> anyhow::Result<PathBuf> {
    args.agent_socket
        .clone()
        .map_or_else(|| default_socket("--agent-socket"), Ok)
}

/// Connects to the agent at `args`' socket; an error if none answers there.
pub fn connect(args: &AgentSocketArgs) -> anyhow::Result<AgentConnection> {
    let path = socket_path(args)?;
    AgentConnection::connect(&path).with_context(|| {
        format!(
            "no agent is running at {} (start one with `certauth agent`)",
            path.display()
        )
    })
}

/// Connects if an agent is running, `None` if not.
pub fn running(args: &AgentSocketArgs) -> Option<AgentConnection> {
    connect(args).ok()
}
