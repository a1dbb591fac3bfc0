//! The agent's `sign-in` method: a cached sign-in when one is valid; otherwise the certificate
//! choice and the PIN asked of the client over the connection (or a login held for the same
//! endpoint and user reused), the mutual TLS sign-in, and the result cached until its token
//! expires. An endpoint configured with `confirm = true` gets the user's confirmation before
//! either is answered without a PIN.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use certauth::config::Config;
use certauth::picker::choice::CertChoice;
use certauth::picker::remembered::{endpoint_key, RememberedChoices};
use certauth::picker::terminal::{PickerError, PickerRow};
use certauth::pin::login::{FinalTry, PinPrompt, PinPromptError, PinRequest};
use certauth::signin::cache::{answer_expiry, capped_expiry, CachedSignIn, Signer};
use certauth::signin::error::SignInError;
use certauth::signin::protocol::{sign_in_url, SignInAnswer};
use certauth::signin::select::{self, Chooser, SelectOptions};
use certauth::signin::{self as flow, ClientOptions, PreparedClient, Redirects};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::confirm::{Confirmation, Confirmer, Requester};
use super::connection::{line_of, Failure};
use super::sessions::ClientSettings;
use super::Agent;

/// How long a question to the client waits for its answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(300);

/// `sign-in`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Params {
    url: String,
    username: String,
    /// A pkcs11: URI or SHA-256 thumbprint.
    cert: Option<String>,
    /// PEM roots for the server's certificate (the system's when absent).
    ca_file: Option<PathBuf>,
    /// PEM files with the intermediates of the user's certificate.
    #[serde(default)]
    chain: Vec<PathBuf>,
    #[serde(default)]
    allow_final_try: bool,
    /// Ignore a cached sign-in and sign in afresh.
    #[serde(default)]
    fresh: bool,
    /// Remember the certificate chosen for this endpoint and username (default true).
    #[serde(default = "yes")]
    remember: bool,
    /// Whether a person answers the PIN question, so a wrong PIN may be asked again (default
    /// true).
    #[serde(default = "yes")]
    interactive: bool,
}

fn yes() -> bool {
    true
}

/// Signs in for the client, asking it questions through `questions` and reading its answers
/// from `answers`.
pub async fn sign_in(
    agent: Arc<Agent>,
    id: Value,
    params: Value,
    questions: UnboundedSender<String>,
    answers: Receiver<Answer>,
    requester: Requester,
) -> Result<Value, Failure> {
    let config = blocking(certauth::config::load)
        .await?
        .map_err(|e| ("internal", format!("cannot use the config file: {e}")))?
        .0;
    let request = Arc::new(Request::parse(params, &config, requester)?);
    let mut conversation = Conversation {
        id,
        questions,
        answers,
        interactive: request.params.interactive,
    };
    if !request.params.fresh {
        let cached;
        (cached, conversation) = {
            let (agent, request) = (Arc::clone(&agent), Arc::clone(&request));
            blocking(move || {
                let found =
                    agent
                        .sessions
                        .cached(&request.endpoint, &request.params.username, |signer| {
                            request.choice.as_ref().is_none_or(|c| {
                                c.matches_identified(
                                    &signer.certificate_uri,
                                    &signer.certificate_sha256,
                                )
                            })
                        });
                if let Some(found) = &found {
                    request.confirm(&found.signer, true, &mut conversation)?;
                }
                Ok((found, conversation))
            })
            .await??
        };
        if let Some(cached) = cached {
            agent.emit(&sign_in_event(
                &request,
                &cached.answer,
                &cached.signer,
                true,
            ));
            return Ok(result(cached.answer, &cached.signer, true));
        }
    }

    let (mut prepared, conversation) =
        prepare_blocking(&agent, &request, conversation, true).await?;
    let mut outcome = prepared
        .client
        .sign_in(&request.url, &request.params.username)
        .await;
    if outcome.is_err() && prepared.reused {
        // A held login can go stale (a card pulled and put back with lock-on-removal off): drop
        // it and log in afresh, once.
        release_login(&agent, &prepared.signer).await;
        (prepared, _) = prepare_blocking(&agent, &request, conversation, false).await?;
        outcome = prepared
            .client
            .sign_in(&request.url, &request.params.username)
            .await;
    }
    let answer = match outcome {
        Ok(answer) => answer,
        Err(e) => {
            release_login(&agent, &prepared.signer).await;
            return Err(failure(e));
        }
    };
    agent.emit(&sign_in_event(&request, &answer, &prepared.signer, false));
    if answer.succeeded() {
        if request.params.remember {
            if let Some(choice) = &prepared.remember {
                let endpoint = endpoint_key(&request.url);
                crate::signin::remember_choice(&endpoint, &request.params.username, choice.clone());
            }
        }
        match answer_expiry(&answer) {
            Some(claimed) => {
                let expires = capped_expiry(
                    claimed,
                    time::OffsetDateTime::now_utc(),
                    agent.max_cache_lifetime,
                );
                let entry = CachedSignIn {
                    endpoint: request.endpoint.clone(),
                    username: request.params.username.clone(),
                    answer: answer.clone(),
                    expires,
                    signer: prepared.signer.clone(),
                };
                let agent = Arc::clone(&agent);
                let client = Arc::clone(&prepared.client);
                let (generation, settings) = (prepared.generation, request.settings.clone());
                blocking(move || agent.sessions.keep(generation, entry, settings, client)).await?;
            }
            None => tracing::warn!(
                endpoint = %request.endpoint,
                "the answer has no expiresAt, so it is not cached"
            ),
        }
    }
    Ok(result(answer, &prepared.signer, false))
}

/// A checked `sign-in` request.
struct Request {
    params: Params,
    url: reqwest::Url,
    /// What cached sign-ins are filed under: the URL the sign-in is posted to, so two verifiers
    /// behind one host never share one.
    endpoint: String,
    choice: Option<CertChoice>,
    settings: ClientSettings,
    /// Who confirms a sign-in answered without a PIN, when the endpoint wants that.
    confirmer: Option<Confirmer>,
    requester: Requester,
    /// The config file's `auto_select_single`.
    auto_select_single: bool,
}

impl Request {
    fn parse(params: Value, config: &Config, requester: Requester) -> Result<Self, Failure> {
        let params: Params = serde_path_to_error::deserialize(params)
            .map_err(|e| ("badRequest", format!("sign-in parameters: {e}")))?;
        let url = reqwest::Url::parse(&params.url)
            .map_err(|e| ("badRequest", format!("`url` is not a URL: {e}")))?;
        if url.scheme() != "https" {
            return Err(("badRequest", "`url` must be an https URL".to_owned()));
        }
        if params.username.trim().is_empty() {
            return Err(("badRequest", "`username` is empty".to_owned()));
        }
        let choice = match &params.cert {
            Some(text) => Some(
                text.parse::<CertChoice>()
                    .map_err(|e| ("badRequest", e.to_string()))?,
            ),
            None => None,
        };
        let confirmer = config
            .confirms(&url)
            .then(|| match &config.confirm_program {
                Some(program) => Confirmer::Program(program.clone()),
                None => Confirmer::Client,
            });
        Ok(Self {
            endpoint: sign_in_url(&url).to_string(),
            settings: ClientSettings {
                ca_file: params.ca_file.clone(),
                chain_files: params.chain.clone(),
            },
            params,
            url,
            choice,
            confirmer,
            requester,
            auto_select_single: config.auto_select_single,
        })
    }

    /// Gets the user's confirmation to answer without a PIN, signed by `signer`, when the
    /// endpoint wants it. Blocking.
    fn confirm(
        &self,
        signer: &Signer,
        cached: bool,
        conversation: &mut Conversation,
    ) -> Result<(), Failure> {
        let Some(confirmer) = &self.confirmer else {
            return Ok(());
        };
        let confirmation = Confirmation {
            endpoint: &self.endpoint,
            username: &self.params.username,
            signer,
            requester: &self.requester,
            cached,
        };
        confirmer.confirm(&confirmation, |question| conversation.confirm(question))
    }
}

/// Runs `work` on the blocking pool (it may wait for the keyring or a token).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ("internal", format!("the sign-in failed: {e}")))
}

async fn release_login(agent: &Arc<Agent>, signer: &Signer) {
    let (agent, signer) = (Arc::clone(agent), signer.clone());
    let _ = blocking(move || agent.sessions.release_login(&signer)).await;
}

/// [`prepare`] on the blocking pool; the conversation comes back for a second attempt.
async fn prepare_blocking(
    agent: &Arc<Agent>,
    request: &Arc<Request>,
    mut conversation: Conversation,
    reuse_login: bool,
) -> Result<(Prepared, Conversation), Failure> {
    let (agent, request) = (Arc::clone(agent), Arc::clone(request));
    blocking(move || {
        prepare(&agent, &request, &mut conversation, reuse_login).map(|p| (p, conversation))
    })
    .await?
}

/// A client ready to sign in, and what it signs with.
struct Prepared {
    client: Arc<PreparedClient>,
    signer: Signer,
    /// The choice to remember, when the user made it now.
    remember: Option<certauth::picker::remembered::RememberedCertificate>,
    /// Whether the client is a held login from an earlier sign-in.
    reused: bool,
    /// The sessions' generation before the tokens were scanned.
    generation: u64,
}

/// Chooses the certificate and logs in to its token (or reuses a held login): the blocking part.
fn prepare(
    agent: &Agent,
    request: &Request,
    conversation: &mut Conversation,
    reuse_login: bool,
) -> Result<Prepared, Failure> {
    let generation = agent.sessions.generation();
    let scan = agent.scan();
    let endpoint = endpoint_key(&request.url);
    let username = &request.params.username;
    let remembered = RememberedChoices::default_path()
        .and_then(|path| RememberedChoices::load(&path))
        .inspect_err(
            |e| tracing::warn!(error = %e, "the remembered certificate choices are not used"),
        )
        .ok()
        .and_then(|store| store.get(&endpoint, username).cloned());
    let client_options = ClientOptions {
        ca_file: request.settings.ca_file.clone(),
        chain_files: request.settings.chain_files.clone(),
        final_try: if request.params.allow_final_try {
            FinalTry::Allow
        } else {
            FinalTry::Refuse
        },
        timeout: None,
        // A sign-in follows no redirect: its answer is cached under this endpoint.
        redirects: Redirects::None,
        preflight: Some(request.url.clone()),
    };
    // The server first: its acceptable CAs decide what is offered, before any PIN.
    let server = flow::reach_server(&client_options).map_err(failure)?;
    let options = SelectOptions {
        choice: request.choice.clone(),
        remembered,
        auto_select_single: request.auto_select_single,
        server,
        chain_pool: flow::chain_pool(&client_options).map_err(failure)?,
        username: Some(username.clone()),
    };
    let selection = select::select(&scan.tokens, &options, conversation).map_err(failure)?;
    let [candidate] = selection.candidates.as_slice() else {
        // No terminal to choose on (the client said so): the choices, as a direct sign-in
        // lists them.
        let choices: Vec<String> = selection
            .candidates
            .iter()
            .map(|c| select::describe_candidate(&scan.tokens, *c))
            .collect();
        return Err((
            "noUsableCertificate",
            format!(
                "several certificates can sign in and there is no terminal to choose on; name one with --cert:\n{}",
                choices.join("\n")
            ),
        ));
    };
    let token = candidate.token(&scan.tokens);
    let cert = candidate.cert(&scan.tokens);
    let info = cert
        .cert
        .as_ref()
        .map_err(|e| ("noUsableCertificate", format!("`{}`: {e}", cert.label)))?;
    let signer = Signer {
        module: token.module.clone(),
        token_label: token.label.clone(),
        token_serial: token.serial.clone(),
        reader: token.slot_description.clone(),
        certificate_sha256: info.sha256.clone(),
        certificate_uri: cert.uri.clone(),
        certificate: certauth::signin::identity::describe(info),
    };
    let remember =
        selection
            .freshly_chosen
            .then(|| certauth::picker::remembered::RememberedCertificate {
                sha256: info.sha256.clone(),
                uri: cert.uri.clone(),
                description: certauth::signin::identity::describe(info),
            });
    if reuse_login {
        if let Some(client) =
            agent
                .sessions
                .login_for(&request.endpoint, username, &info.sha256, &request.settings)
        {
            request.confirm(&signer, false, conversation)?;
            tracing::debug!(token = %token.label, "reusing a held login");
            return Ok(Prepared {
                client,
                signer,
                remember,
                reused: true,
                generation,
            });
        }
    }
    let client = flow::prepare(
        &agent.modules,
        &scan.tokens,
        &selection,
        conversation,
        &client_options,
    )
    .map_err(failure)?;
    for note in &client.notes {
        conversation.say(note);
    }
    Ok(Prepared {
        client: Arc::new(client),
        signer,
        remember,
        reused: false,
        generation,
    })
}

/// The `sign-in` result: the server's answer, whether it came from the cache, and what signed.
fn result(answer: SignInAnswer, signer: &Signer, cached: bool) -> Value {
    let mut value = serde_json::to_value(answer).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.insert("cached".into(), Value::Bool(cached));
        map.insert(
            "signedWith".into(),
            json!({
                "token": signer.token_label,
                "certificateSha256": signer.certificate_sha256,
                "certificateUri": signer.certificate_uri,
                "certificate": signer.certificate,
            }),
        );
    }
    value
}

/// The `signIn` event: who, where, how it went; never the token.
fn sign_in_event(request: &Request, answer: &SignInAnswer, signer: &Signer, cached: bool) -> Value {
    json!({
        "event": "signIn",
        "endpoint": request.endpoint,
        "username": request.params.username,
        "status": answer.status,
        "authenticationStrength": answer.authentication_strength,
        "errorCode": answer.error_code,
        "cached": cached,
        "tokenLabel": signer.token_label,
    })
}

/// A sign-in failure as an error answer; the code tells its class (`docs/agent-api.md`). The
/// message carries the details too (for a missing certificate, the `--cert` choices the user acts
/// on), once.
fn failure(error: SignInError) -> Failure {
    (
        crate::signin::failure_code(error.class()),
        error.to_string(),
    )
}

/// A client's answer to a question. A PIN answer is parsed straight into a secret, never into a
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

    fn answers(&self, field: &str) -> bool {
        match self {
            Self::Pin(_) => field == "pin",
            Self::Other(answer) => answer.contains_key(field),
        }
    }
}

/// Questions to the client over the connection, and its answers.
struct Conversation {
    id: Value,
    questions: UnboundedSender<String>,
    answers: Receiver<Answer>,
    interactive: bool,
}

impl Conversation {
    /// Asks `question` (an object) and waits for an answer carrying `field` (others are stale
    /// or stray, and skipped); `None` if the client left or did not answer in time.
    fn ask(&mut self, mut question: Value, field: &str) -> Option<Answer> {
        question["id"] = self.id.clone();
        self.questions.send(line_of(&question)).ok()?;
        let deadline = std::time::Instant::now() + ANSWER_DEADLINE;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let answer = self.answers.recv_timeout(left).ok()?;
            if answer.answers(field) {
                return Some(answer);
            }
            tracing::debug!(field, "skipped an answer to another question");
        }
    }

    /// Asks `question` and returns the value of `field` in the answer.
    fn ask_for(&mut self, question: Value, field: &str) -> Option<Value> {
        match Conversation::ask(self, question, field)? {
            Answer::Other(mut answer) => answer.remove(field),
            Answer::Pin(_) => None,
        }
    }

    /// Asks the client to confirm a sign-in without a PIN; `None` without an answer.
    fn confirm(&mut self, question: &str) -> Option<bool> {
        self.ask_for(json!({ "ask": "confirm", "question": question }), "confirm")
            .map(|answer| answer == Value::Bool(true))
    }

    fn say(&mut self, message: &str) {
        let _ = self
            .questions
            .send(line_of(&json!({ "id": self.id, "notice": message })));
    }
}

impl PinPrompt for Conversation {
    fn ask(&mut self, request: &PinRequest<'_>) -> Result<Option<SecretString>, PinPromptError> {
        let question = json!({
            "ask": "pin",
            "token": request.token,
            "certificate": request.certificate,
            "warning": request.warning,
            "attempt": request.attempt,
        });
        match Conversation::ask(self, question, "pin") {
            Some(Answer::Pin(pin)) => Ok(pin),
            Some(Answer::Other(_)) => Err(PinPromptError(
                "the answer to the PIN question has no PIN string".into(),
            )),
            None => Err(PinPromptError(
                "the client did not answer the PIN question".into(),
            )),
        }
    }

    fn can_retry(&self) -> bool {
        self.interactive
    }

    fn confirm_final_try(&mut self, token: &str) -> bool {
        let answer = self.ask_for(
            json!({ "ask": "confirmFinalTry", "token": token }),
            "confirm",
        );
        answer == Some(Value::Bool(true))
    }

    fn notice(&mut self, message: &str) {
        self.say(message);
    }
}

impl Chooser for Conversation {
    fn choose(&mut self, rows: &[PickerRow]) -> Result<Option<usize>, PickerError> {
        let rows: Vec<Value> = rows
            .iter()
            .map(|row| {
                json!({
                    "title": row.title,
                    "issuer": row.issuer,
                    "expires": row.expires,
                    "token": row.token,
                    "details": row.details,
                })
            })
            .collect();
        let count = rows.len();
        let answer =
            match Conversation::ask(self, json!({ "ask": "choose", "rows": rows }), "choice") {
                Some(Answer::Other(answer)) => answer,
                _ => return Err(PickerError::NoTerminal),
            };
        // A client with no terminal to show the picker on says so; nobody cancelled.
        if answer.get("noTerminal") == Some(&Value::Bool(true)) {
            return Err(PickerError::NoTerminal);
        }
        let choice = answer.get("choice").cloned().unwrap_or(Value::Null);
        match choice.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(index) if index < count => Ok(Some(index)),
            _ => Ok(None),
        }
    }

    fn notice(&mut self, message: &str) {
        self.say(message);
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
}
