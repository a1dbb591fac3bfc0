//! A sign-in's dialogue with its client: the questions the agent puts over the connection (PIN,
//! certificate, final try, confirmation), notices, and the answers read back, each question waiting
//! at most [`ANSWER_DEADLINE`]. It is the agent's [`PinPrompt`] and [`Chooser`].

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::protocol::{notice_line, Answer, ChoiceAnswer, Question};
use crate::picker::select::Chooser;
use crate::picker::terminal::{PickerError, PickerRow};
use crate::token::login::{PinPrompt, PinPromptError, PinRequest};

/// How long a question to the client waits for its answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(300);

/// Questions to the client over the connection, and its answers.
pub struct Conversation {
    id: Value,
    questions: UnboundedSender<String>,
    answers: Receiver<Answer>,
    interactive: bool,
}

impl Conversation {
    /// The dialogue of sign-in `id`: its lines go to `questions`, the client's answers come from
    /// `answers`. `interactive`: whether a person answers, so a wrong PIN may be asked again.
    pub fn new(
        id: Value,
        questions: UnboundedSender<String>,
        answers: Receiver<Answer>,
        interactive: bool,
    ) -> Self {
        Self {
            id,
            questions,
            answers,
            interactive,
        }
    }

    /// Asks `question` and waits for an answer to it (others are stale or stray, and skipped);
    /// `None` if the client left or did not answer in time.
    fn ask(&mut self, question: &Question) -> Option<Answer> {
        let field = question.field();
        self.questions.send(question.line(&self.id)).ok()?;
        let deadline = Instant::now() + ANSWER_DEADLINE;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let answer = self.answers.recv_timeout(left).ok()?;
            if answer.answers(field) {
                return Some(answer);
            }
            tracing::debug!(field, "skipped an answer to another question");
        }
    }

    /// The fields of the answer to `question`; `None` without one (or with a PIN line).
    fn ask_for_fields(&mut self, question: &Question) -> Option<serde_json::Map<String, Value>> {
        match self.ask(question)? {
            Answer::Other(fields) => Some(fields),
            Answer::Pin(_) => None,
        }
    }

    /// Whether the client said yes to `question`; `None` without an answer.
    fn ask_yes_no(&mut self, question: &Question) -> Option<bool> {
        self.ask_for_fields(question)
            .map(|fields| fields.get("confirm") == Some(&Value::Bool(true)))
    }

    /// Asks the client to confirm a sign-in without a PIN; `None` without an answer.
    pub fn confirm(&mut self, question: &str) -> Option<bool> {
        self.ask_yes_no(&Question::Confirm {
            question: question.to_owned(),
        })
    }

    pub fn say(&mut self, message: &str) {
        let _ = self.questions.send(notice_line(&self.id, message));
    }
}

impl PinPrompt for Conversation {
    fn ask(&mut self, request: &PinRequest<'_>) -> Result<Option<SecretString>, PinPromptError> {
        let question = Question::Pin {
            token: request.token.to_owned(),
            certificate: request.certificate.to_owned(),
            warning: request.warning.map(str::to_owned),
            attempt: request.attempt,
        };
        match Conversation::ask(self, &question) {
            Some(Answer::Pin(pin)) => Ok(pin),
            Some(Answer::Other(_)) => Err(PinPromptError::new(
                "the answer to the PIN question has no PIN string",
            )),
            None => Err(PinPromptError::new(
                "the client did not answer the PIN question",
            )),
        }
    }

    fn can_retry(&self) -> bool {
        self.interactive
    }

    fn confirm_final_try(&mut self, token: &str) -> bool {
        let question = Question::ConfirmFinalTry {
            token: token.to_owned(),
        };
        self.ask_yes_no(&question) == Some(true)
    }

    fn notice(&mut self, message: &str) {
        self.say(message);
    }
}

impl Chooser for Conversation {
    fn choose(&mut self, rows: &[PickerRow]) -> Result<Option<usize>, PickerError> {
        let question = Question::Choose {
            rows: rows.to_vec(),
        };
        let Some(fields) = self.ask_for_fields(&question) else {
            return Err(PickerError::NoTerminal);
        };
        match ChoiceAnswer::from_fields(&fields, rows.len()) {
            ChoiceAnswer::Chosen(index) => Ok(Some(index)),
            ChoiceAnswer::Cancelled => Ok(None),
            ChoiceAnswer::NoTerminal => Err(PickerError::NoTerminal),
        }
    }

    fn notice(&mut self, message: &str) {
        self.say(message);
    }
}
