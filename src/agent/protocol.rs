//! The agent's local API on the wire (`docs/agent-api.md`): newline-delimited JSON requests,
//! responses and their error codes, a sign-in's questions and the client's answers, and the
//! agent's own events. Both the agent and its client ([`super::client`]) speak it through these
//! types; this module imports nothing else of the agent.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::picker::select::{Nameable, NamedProblem, SelectError};
use crate::picker::terminal::PickerRow;
use crate::remedy::Remedy;
use crate::signin::error::{FailureClass, SignInError};

/// The methods this agent answers.
pub const METHODS: &[&str] = &["status", "list", "sign-in", "forget", "lock", "subscribe"];

/// An error answer's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not JSON, not an object, no `method`, or bad `params`.
    BadRequest,
    UnknownMethod,
    /// The peer runs as another user.
    Forbidden,
    /// A request line over the limit; the connection is then closed.
    RequestTooLarge,
    /// No place for another sign-in, or a request sent while one runs on the connection.
    Busy,
    Internal,
    /// The endpoint wants confirmation and the user declined or did not answer.
    NotConfirmed,
    /// The sign-in failure classes of `certauth sign-in`'s exit codes 3, 4, 5, 6 and 1.
    Denied,
    NoUsableCertificate,
    Pin,
    Network,
    SignInFailed,
}

impl ErrorCode {
    const ALL: [ErrorCode; 12] = [
        Self::BadRequest,
        Self::UnknownMethod,
        Self::Forbidden,
        Self::RequestTooLarge,
        Self::Busy,
        Self::Internal,
        Self::NotConfirmed,
        Self::Denied,
        Self::NoUsableCertificate,
        Self::Pin,
        Self::Network,
        Self::SignInFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "badRequest",
            Self::UnknownMethod => "unknownMethod",
            Self::Forbidden => "forbidden",
            Self::RequestTooLarge => "requestTooLarge",
            Self::Busy => "busy",
            Self::Internal => "internal",
            Self::NotConfirmed => "notConfirmed",
            Self::Denied => "denied",
            Self::NoUsableCertificate => "noUsableCertificate",
            Self::Pin => "pin",
            Self::Network => "network",
            Self::SignInFailed => "signInFailed",
        }
    }

    /// The code a response carries; `None` for one this build does not know.
    pub fn from_wire(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The code of a sign-in that failed with `class`.
    pub fn for_failure(class: FailureClass) -> Self {
        match class {
            FailureClass::Denied => Self::Denied,
            FailureClass::NoUsableCertificate => Self::NoUsableCertificate,
            FailureClass::Pin => Self::Pin,
            FailureClass::Network => Self::Network,
            FailureClass::Other => Self::SignInFailed,
        }
    }

    /// The sign-in failure class this code stands for; `Other` for codes that are not one.
    pub fn failure_class(self) -> FailureClass {
        match self {
            Self::Denied => FailureClass::Denied,
            Self::NoUsableCertificate => FailureClass::NoUsableCertificate,
            Self::Pin => FailureClass::Pin,
            Self::Network => FailureClass::Network,
            _ => FailureClass::Other,
        }
    }
}

/// An error answer: its code and message, and what the user can do about it (`remedy`, the
/// certificates to name one of in `choices`), as facts each client words its own way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
    pub remedy: Option<Remedy>,
    pub choices: Vec<Nameable>,
    /// What is wrong with the certificate the request named (`cert`), when that is the failure.
    pub named: Option<NamedProblem>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            remedy: None,
            choices: Vec::new(),
            named: None,
        }
    }

    /// A failed sign-in, with its class's code, its remedy and, when no certificate was chosen
    /// for want of a terminal, the choices.
    pub fn sign_in(error: &SignInError) -> Self {
        let (choices, named) = match error {
            SignInError::Select(SelectError::NoTerminal { choices }) => (choices.clone(), None),
            SignInError::Select(SelectError::Named { problem, .. }) => {
                (Vec::new(), Some(problem.clone()))
            }
            _ => (Vec::new(), None),
        };
        Self {
            code: ErrorCode::for_failure(error.class()),
            message: error.to_string(),
            remedy: error.remedy(),
            choices,
            named,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// One JSON value as one line.
pub fn line_of(value: &Value) -> String {
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// The response line for request `id`: its result, or its error.
pub fn response_line(id: &Value, result: Result<Value, Failure>) -> String {
    match result {
        Ok(result) => line_of(&json!({ "id": id, "result": result })),
        Err(failure) => error_line(id, &failure),
    }
}

pub fn error_line(id: &Value, failure: &Failure) -> String {
    let mut error = json!({ "code": failure.code.as_str(), "message": failure.message });
    if let Some(remedy) = failure.remedy {
        error["remedy"] = json!(remedy.as_str());
    }
    if !failure.choices.is_empty() {
        error["choices"] = json!(failure.choices);
    }
    if let Some(named) = &failure.named {
        error["named"] = json!(named);
    }
    line_of(&json!({ "id": id, "error": error }))
}

/// A response's result, or its error (a code this build does not know reads as `internal`,
/// keeping the agent's message).
pub fn parse_response(response: &Value) -> Result<Value, Failure> {
    if let Some(error) = response.get("error") {
        let code = error["code"].as_str().unwrap_or_default();
        let mut failure = Failure::new(
            ErrorCode::from_wire(code).unwrap_or(ErrorCode::Internal),
            error["message"]
                .as_str()
                .unwrap_or("the agent gave no reason"),
        );
        failure.remedy = error["remedy"].as_str().and_then(Remedy::from_wire);
        failure.choices = serde_json::from_value(error["choices"].clone()).unwrap_or_default();
        failure.named = serde_json::from_value(error["named"].clone()).ok();
        return Err(failure);
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}

/// `sign-in`'s parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInParams {
    pub url: String,
    pub username: String,
    /// A pkcs11: URI or SHA-256 thumbprint.
    pub cert: Option<String>,
    /// PEM roots for the server's certificate (the system's when absent).
    pub ca_file: Option<PathBuf>,
    /// PEM files with the intermediates of the user's certificate.
    #[serde(default)]
    pub chain: Vec<PathBuf>,
    #[serde(default)]
    pub allow_final_try: bool,
    /// Ignore a cached sign-in and sign in afresh.
    #[serde(default)]
    pub fresh: bool,
    /// Remember the certificate chosen for this endpoint and username (default true).
    #[serde(default = "yes")]
    pub remember: bool,
    /// Whether a person answers the PIN question, so a wrong PIN may be asked again (default
    /// true).
    #[serde(default = "yes")]
    pub interactive: bool,
}

fn yes() -> bool {
    true
}

/// A question the agent puts to the client during a sign-in (`"ask"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "camelCase")]
pub enum Question {
    Pin {
        token: String,
        certificate: String,
        /// A `PinWarning`'s text, or `null`.
        warning: Option<String>,
        attempt: u32,
    },
    ConfirmFinalTry {
        token: String,
    },
    /// Allow a sign-in without a PIN (an endpoint with `confirm = true`).
    Confirm {
        question: String,
    },
    Choose {
        rows: Vec<PickerRow>,
    },
}

impl Question {
    /// The answer field this question wants.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Pin { .. } => "pin",
            Self::ConfirmFinalTry { .. } | Self::Confirm { .. } => "confirm",
            Self::Choose { .. } => "choice",
        }
    }

    /// The question's line for sign-in `id`.
    pub fn line(&self, id: &Value) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["id"] = id.clone();
        line_of(&value)
    }
}

/// A note to the client that needs no answer.
pub fn notice_line(id: &Value, message: &str) -> String {
    line_of(&json!({ "id": id, "notice": message }))
}

/// What a line from the agent during a sign-in is.
pub enum SignInMessage {
    Notice(String),
    Question(Question),
    /// A question this client does not know.
    UnknownQuestion(String),
    /// The sign-in's response: it is over.
    Response(Value),
}

impl SignInMessage {
    pub fn parse(message: Value) -> Self {
        if let Some(notice) = message.get("notice").and_then(Value::as_str) {
            return Self::Notice(notice.to_owned());
        }
        let Some(ask) = message.get("ask").and_then(Value::as_str) else {
            return Self::Response(message);
        };
        let ask = ask.to_owned();
        match serde_json::from_value::<Question>(message) {
            Ok(question) => Self::Question(question),
            Err(_) => Self::UnknownQuestion(ask),
        }
    }
}

/// The client's answer to a `choose` question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceAnswer {
    Chosen(usize),
    Cancelled,
    /// The client has no terminal to show the picker on; nobody cancelled.
    NoTerminal,
}

impl ChoiceAnswer {
    pub fn to_json(self) -> Value {
        match self {
            Self::Chosen(index) => json!({ "choice": index }),
            Self::Cancelled => json!({ "choice": null }),
            Self::NoTerminal => json!({ "choice": null, "noTerminal": true }),
        }
    }

    /// The answer in `fields`, among `count` rows; out of range is a cancel.
    pub fn from_fields(fields: &serde_json::Map<String, Value>, count: usize) -> Self {
        if fields.get("noTerminal") == Some(&Value::Bool(true)) {
            return Self::NoTerminal;
        }
        match fields.get("choice").and_then(Value::as_u64) {
            Some(index) if index < count as u64 => Self::Chosen(index as usize),
            _ => Self::Cancelled,
        }
    }
}

/// A client's line during a sign-in. A PIN answer is parsed straight into a secret, never into a
/// JSON value whose string would linger unwiped.
pub enum Answer {
    Pin(Option<SecretString>),
    Other(serde_json::Map<String, Value>),
}

/// `{"id": ..., "pin": "..." | null}` and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinLine {
    #[serde(default, rename = "id")]
    _id: Value,
    /// Required (a `deserialize_with` field has no implicit default), `null` allowed.
    #[serde(deserialize_with = "secret_or_null")]
    pin: Option<SecretString>,
}

fn secret_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    Option::<SecretString>::deserialize(deserializer)
}

impl Answer {
    /// The answer a line carries; `Err` with the parsed JSON when it is not an answer (a request,
    /// or not an object), or with the parse error when it is not JSON.
    pub fn parse(line: &[u8]) -> Result<Self, Result<Value, serde_json::Error>> {
        if let Ok(pin_line) = serde_json::from_slice::<PinLine>(line) {
            return Ok(Self::Pin(pin_line.pin));
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(answer)) if !answer.contains_key("method") => Ok(Self::Other(answer)),
            Ok(other) => Err(Ok(other)),
            Err(e) => Err(Err(e)),
        }
    }

    /// Whether this answers a question wanting `field`.
    pub fn answers(&self, field: &str) -> bool {
        match self {
            Self::Pin(_) => field == "pin",
            Self::Other(answer) => answer.contains_key(field),
        }
    }
}

/// The agent's own events on the `subscribe` stream (reader, card and token events are
/// [`crate::listing`]'s). Never a token, never a PIN.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event<'a> {
    /// A slow subscriber missed `count` events.
    EventsLost { count: u64 },
    #[serde(rename_all = "camelCase")]
    SignIn {
        endpoint: &'a str,
        username: &'a str,
        status: &'a str,
        authentication_strength: Option<&'a str>,
        error_code: Option<&'a str>,
        cached: bool,
        token_label: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    LoginClosed {
        endpoint: &'a str,
        token_label: &'a str,
        reader: &'a str,
        reason: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    SignInDropped {
        endpoint: &'a str,
        username: &'a str,
        token_label: &'a str,
        reason: &'a str,
    },
}

impl Event<'_> {
    /// The event's line: `event` first, then the fields in the order declared here.
    pub fn line(&self) -> String {
        line_of(&serde_json::to_value(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

    use secrecy::ExposeSecret;

    use super::*;

    fn pin_of(line: &str) -> Option<String> {
        match Answer::parse(line.as_bytes()) {
            Ok(Answer::Pin(pin)) => pin.map(|p| p.expose_secret().to_owned()),
            _ => panic!("{line} is not a PIN answer"),
        }
    }

    #[test]
    fn pin_answers_parse_into_secrets_and_other_lines_do_not() {
        assert_eq!(pin_of(r#"{"id":7,"pin":"1234"}"#).as_deref(), Some("1234"));
        assert_eq!(pin_of(r#"{"pin":"12\"34"}"#).as_deref(), Some("12\"34"));
        assert_eq!(pin_of(r#"{"id":"s","pin":null}"#), None);
        for other in [
            r#"{"id":7}"#,
            r#"{"id":7,"choice":1}"#,
            r#"{"id":7,"pin":5}"#,
        ] {
            assert!(
                matches!(Answer::parse(other.as_bytes()), Ok(Answer::Other(_))),
                "{other}"
            );
        }
        assert!(matches!(
            Answer::parse(br#"{"id":1,"method":"status"}"#),
            Err(Ok(_))
        ));
        assert!(matches!(Answer::parse(b"[1]"), Err(Ok(_))));
        assert!(matches!(Answer::parse(b"{not json"), Err(Err(_))));
    }

    #[test]
    fn questions_and_error_codes_round_trip_on_the_wire() {
        let question = Question::Pin {
            token: "Alice".into(),
            certificate: "CN=Alice".into(),
            warning: None,
            attempt: 2,
        };
        let line = question.line(&json!(7));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            json!({"id": 7, "ask": "pin", "token": "Alice", "certificate": "CN=Alice", "warning": null, "attempt": 2})
        );
        match SignInMessage::parse(value) {
            SignInMessage::Question(parsed) => assert_eq!(parsed, question),
            _ => panic!("not a question"),
        }
        assert!(matches!(
            SignInMessage::parse(json!({"id": 7, "ask": "dance"})),
            SignInMessage::UnknownQuestion(ask) if ask == "dance"
        ));
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        let failure = Failure::new(ErrorCode::Busy, "later");
        let line = error_line(&json!(3), &failure);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parse_response(&value), Err(failure));
    }

    #[test]
    fn a_sign_in_failure_carries_its_remedy_and_choices_as_facts() {
        let choices = vec![Nameable {
            description: "CN=Bob".into(),
            uri: "pkcs11:token=Bob".into(),
            sha256: Some("ab".repeat(32)),
        }];
        let error = SignInError::Select(SelectError::NoTerminal {
            choices: choices.clone(),
        });
        let failure = Failure::sign_in(&error);
        assert_eq!(failure.code, ErrorCode::NoUsableCertificate);
        assert_eq!(failure.remedy, Some(Remedy::NameCertificate));
        assert!(!failure.message.contains("--cert"), "{}", failure.message);
        let value: Value = serde_json::from_str(&error_line(&json!(1), &failure)).unwrap();
        assert_eq!(value["error"]["remedy"], "nameCertificate");
        assert_eq!(value["error"]["choices"][0]["uri"], "pkcs11:token=Bob");
        let parsed = parse_response(&value).unwrap_err();
        assert_eq!(parsed.choices, choices);
        assert_eq!(parsed.remedy, Some(Remedy::NameCertificate));
    }

    #[test]
    fn choice_answers_read_a_cancel_for_anything_out_of_range() {
        let fields = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            ChoiceAnswer::from_fields(&fields(json!({"choice": 1})), 2),
            ChoiceAnswer::Chosen(1)
        );
        assert_eq!(
            ChoiceAnswer::from_fields(&fields(json!({"choice": 2})), 2),
            ChoiceAnswer::Cancelled
        );
        assert_eq!(
            ChoiceAnswer::from_fields(&fields(json!({"choice": null, "noTerminal": true})), 2),
            ChoiceAnswer::NoTerminal
        );
        assert_eq!(
            ChoiceAnswer::NoTerminal.to_json(),
            json!({"choice": null, "noTerminal": true})
        );
    }
}
