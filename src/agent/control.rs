//! The agent's control thread: `lock`, and `status`'s look at the sessions, run here one at a time
//! instead of on tokio's blocking pool, where every sign-in waiting for its client's answer holds
//! a thread for up to 5 minutes; so however many sign-ins wait, the user can still lock. (What
//! runs here may still wait for a keyring call another request has under way.)

use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub struct Control {
    jobs: mpsc::Sender<Job>,
}

impl Control {
    /// Starts the thread; it runs for as long as the agent.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("agent-control".into())
            .spawn(move || {
                for job in queue {
                    // A job that panics loses only its own answer, not the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the control thread, after the jobs before it; `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .ok()?;
        result.await.ok()
    }
}
