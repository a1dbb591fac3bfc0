//! The agent's `sign-in` method: a cached sign-in when one is valid; otherwise the certificate
//! choice and the PIN asked of the client over the connection (or a login held for the same
//! endpoint and user reused), the mutual TLS sign-in, and the result cached until its token
//! expires. An endpoint configured with `confirm = true` gets the user's confirmation before
//! either is answered without a PIN.

use std::sync::mpsc::Receiver;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::cache::{answer_expiry, capped_expiry, CachedSignIn, Signer};
use super::confirm::{Confirmation, Confirmer, Requester};
use super::conversation::Conversation;
use super::protocol::{Answer, ErrorCode, Event, Failure, SignInParams as Params};
use super::sessions::ClientSettings;
use super::Agent;
use crate::config::Config;
use crate::picker::choice::CertChoice;
use crate::picker::remembered::{endpoint_key, RememberedCertificate, RememberedChoices};
use crate::picker::select::{self, Nameable, SelectError, SelectOptions, Selection};
use crate::signin::error::SignInError;
use crate::signin::protocol::{sign_in_url, SignInAnswer};
use crate::signin::{self as flow, ClientOptions, PreparedClient, Redirects};
use crate::token::inventory::TokenReport;
use crate::token::login::FinalTry;

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
    let config = blocking(crate::config::load)
        .await?
        .map_err(|e| Failure::internal(format!("cannot use the config file: {e}")))?
        .0;
    let request = Arc::new(Request::parse(params, &config, requester)?);
    let mut conversation = Conversation::new(id, questions, answers, request.params.interactive);
    if !request.params.fresh {
        let cached;
        (cached, conversation) = from_cache(&agent, &request, conversation).await?;
        if let Some(cached) = cached {
            agent.emit(sign_in_event(
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
    agent.emit(sign_in_event(&request, &answer, &prepared.signer, false));
    if answer.succeeded() {
        remember(&request, &prepared);
        keep(&agent, &request, &prepared, &answer).await?;
    }
    Ok(result(answer, &prepared.signer, false))
}

/// The cached sign-in for the request, once the user confirmed it where the endpoint wants
/// that; the conversation comes back for the sign-in that follows when there is none.
async fn from_cache(
    agent: &Arc<Agent>,
    request: &Arc<Request>,
    mut conversation: Conversation,
) -> Result<(Option<CachedSignIn>, Conversation), Failure> {
    let (agent, request) = (Arc::clone(agent), Arc::clone(request));
    blocking(move || {
        let found = agent
            .sessions
            .cached(&request.endpoint, &request.params.username, |signer| {
                request.choice.as_ref().is_none_or(|c| {
                    c.matches_identified(&signer.certificate_uri, &signer.certificate_sha256)
                })
            });
        if let Some(found) = &found {
            request.confirm(&found.signer, true, &mut conversation)?;
        }
        Ok((found, conversation))
    })
    .await?
}

/// Remembers the certificate the user chose now for the endpoint, if asked to; a failure is
/// only logged.
fn remember(request: &Request, prepared: &Prepared) {
    let Some(choice) = prepared
        .remember
        .as_ref()
        .filter(|_| request.params.remember)
    else {
        return;
    };
    let endpoint = endpoint_key(&request.url);
    let username = &request.params.username;
    if let Err(e) = RememberedChoices::remember_saved(&endpoint, username, choice.clone()) {
        tracing::warn!(error = %e, "could not remember the certificate choice");
    }
}

/// Caches a successful sign-in until its token expires (never longer than the agent's maximum),
/// and holds its login for the next sign-in to the same endpoint.
async fn keep(
    agent: &Arc<Agent>,
    request: &Request,
    prepared: &Prepared,
    answer: &SignInAnswer,
) -> Result<(), Failure> {
    let Some(claimed) = answer_expiry(answer) else {
        tracing::warn!(
            endpoint = %request.endpoint,
            "the answer has no expiresAt, so it is not cached"
        );
        return Ok(());
    };
    let expires = capped_expiry(
        claimed,
        time::OffsetDateTime::now_utc(),
        agent.settings.max_cache_lifetime,
    );
    let entry = CachedSignIn {
        endpoint: request.endpoint.clone(),
        username: request.params.username.clone(),
        answer: answer.clone(),
        expires,
        signer: prepared.signer.clone(),
    };
    let agent = Arc::clone(agent);
    let client = Arc::clone(&prepared.client);
    let (generation, settings) = (prepared.generation, request.settings.clone());
    blocking(move || agent.sessions.keep(generation, entry, settings, client)).await
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
            .map_err(|e| Failure::bad_request(format!("sign-in parameters: {e}")))?;
        let url = reqwest::Url::parse(&params.url)
            .map_err(|e| Failure::bad_request(format!("`url` is not a URL: {e}")))?;
        if url.scheme() != "https" {
            return Err(Failure::bad_request("`url` must be an https URL"));
        }
        if params.username.trim().is_empty() {
            return Err(Failure::bad_request("`username` is empty"));
        }
        let choice = match &params.cert {
            Some(text) => Some(
                text.parse::<CertChoice>()
                    .map_err(|e| Failure::bad_request(e.to_string()))?,
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

    /// The HTTPS client's options for this request. A sign-in follows no redirect: its answer is
    /// cached under this endpoint.
    fn client_options(&self) -> ClientOptions {
        ClientOptions {
            ca_file: self.settings.ca_file.clone(),
            chain_files: self.settings.chain_files.clone(),
            final_try: if self.params.allow_final_try {
                FinalTry::Allow
            } else {
                FinalTry::Refuse
            },
            timeout: None,
            redirects: Redirects::None,
            preflight: Some(self.url.clone()),
        }
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
        .map_err(|e| Failure::internal(format!("the sign-in failed: {e}")))
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
    remember: Option<RememberedCertificate>,
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
    let username = &request.params.username;
    let client_options = request.client_options();
    // The server first: its acceptable CAs decide what is offered, before any PIN.
    let server = flow::reach_server(&client_options).map_err(failure)?;
    let options = SelectOptions {
        choice: request.choice.clone(),
        remembered: RememberedChoices::saved_choice(&endpoint_key(&request.url), username),
        auto_select_single: request.auto_select_single,
        server,
        chain_pool: flow::chain_pool(&client_options).map_err(failure)?,
        username: Some(username.clone()),
    };
    let selection =
        select::select(&scan.tokens, &options, conversation).map_err(|e| failure(e.into()))?;
    let (signer, remember) = chosen(&scan.tokens, &selection)?;
    if reuse_login {
        let settings = &request.settings;
        let held = agent.sessions.login_for(
            &request.endpoint,
            username,
            &signer.certificate_sha256,
            settings,
        );
        if let Some(client) = held {
            request.confirm(&signer, false, conversation)?;
            tracing::debug!(token = %signer.token_label, "reusing a held login");
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

/// What signs, for the one certificate selected, and the choice to remember when the user made
/// it now. Several selected means the client could not choose: the error lists them.
fn chosen(
    tokens: &[TokenReport],
    selection: &Selection,
) -> Result<(Signer, Option<RememberedCertificate>), Failure> {
    let [candidate] = selection.candidates.as_slice() else {
        // No terminal to choose on (the client said so): the choices, as a direct sign-in
        // lists them.
        let choices = selection
            .candidates
            .iter()
            .map(|c| Nameable::of(tokens, *c))
            .collect();
        return Err(Failure::sign_in(&SignInError::Select(
            SelectError::NoTerminal { choices },
        )));
    };
    let token = candidate.token(tokens);
    let cert = candidate.cert(tokens);
    let info = cert.cert.as_ref().map_err(|e| {
        Failure::new(
            ErrorCode::NoUsableCertificate,
            format!("`{}`: {e}", cert.label),
        )
    })?;
    let signer = Signer {
        module: token.module.clone(),
        token_label: token.label.clone(),
        token_serial: token.serial.clone(),
        reader: token.slot_description.clone(),
        certificate_sha256: info.sha256.clone(),
        certificate_uri: cert.uri.clone(),
        certificate: select::describe(info),
    };
    let remember = selection.freshly_chosen.then(|| RememberedCertificate {
        sha256: info.sha256.clone(),
        uri: cert.uri.clone(),
        description: select::describe(info),
    });
    Ok((signer, remember))
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
fn sign_in_event(
    request: &Request,
    answer: &SignInAnswer,
    signer: &Signer,
    cached: bool,
) -> String {
    Event::SignIn {
        endpoint: &request.endpoint,
        username: &request.params.username,
        status: &answer.status,
        authentication_strength: answer.authentication_strength.as_deref(),
        error_code: answer.error_code.as_deref(),
        cached,
        token_label: &signer.token_label,
    }
    .line()
}

/// A sign-in failure as an error answer; the code tells its class (`docs/agent-api.md`).
fn failure(error: SignInError) -> Failure {
    Failure::sign_in(&error)
}
