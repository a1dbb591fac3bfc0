//! Why the demo stopped: the step that failed, in words, and the error beneath it.

use crate::fixtures::error::FixtureError;
use crate::fixtures::spec::SpecError;
use crate::signin::error::SignInError;

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A demo step that failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step of the demo's own, said in words, with what made it fail if anything did.
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl DemoError {
    /// A step that failed for a reason of its own.
    pub fn step(what: impl Into<String>) -> Self {
        Self::Step {
            what: what.into(),
            cause: None,
        }
    }
}

/// Names the step a result belongs to when it fails.
pub trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, DemoError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Step<T> for Result<T, E> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, DemoError> {
        self.map_err(|e| DemoError::Step {
            what: what(),
            cause: Some(Box::new(e)),
        })
    }
}

/// A [`DemoError::step`] with a formatted message.
macro_rules! demo_error {
    ($($arg:tt)*) => {
        $crate::demo::error::DemoError::step(format!($($arg)*))
    };
}
pub(crate) use demo_error;
