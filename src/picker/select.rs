//! Which certificate(s) a sign-in offers: the one `--cert` names, else the one remembered for
//! this endpoint and user, else the only eligible one, else the user's pick.
//!
//! With the server's answer in hand ([`ServerRequest`]), only certificates whose chain reaches
//! one of its acceptable CA names are offered, before any PIN: those matching the username
//! first, those whose chain can't be completed last and marked uncertain.

use super::choice::CertChoice;
use super::remembered::RememberedCertificate;
use super::terminal::{PickerError, PickerRow};
use crate::remedy::Remedy;
use crate::token::inventory::{CertificateReport, TokenReport};
use crate::x509::cert_info::CertInfo;
use crate::x509::chain::ChainNames;
use crate::x509::dn::dn_string;
use crate::x509::hex;

/// A certificate on a token, by position in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub token: usize,
    pub cert: usize,
}

impl Candidate {
    pub fn token<'a>(&self, tokens: &'a [TokenReport]) -> &'a TokenReport {
        &tokens[self.token]
    }

    pub fn cert<'a>(&self, tokens: &'a [TokenReport]) -> &'a CertificateReport {
        &tokens[self.token].certificates[self.cert]
    }
}

/// Asks the user to pick (the terminal picker in the command line), and tells them what they
/// should know about the choice.
pub trait Chooser {
    fn choose(&mut self, rows: &[PickerRow]) -> Result<Option<usize>, PickerError>;
    fn notice(&mut self, message: &str);
}

/// What the server asked of a client certificate before any token was used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerRequest {
    /// Whether the server asked for a client certificate at all.
    pub asked: bool,
    /// Its acceptable CA names (DER Names); none means any CA.
    pub acceptable_cas: Vec<Vec<u8>>,
}

impl ServerRequest {
    /// The names as the resolver's hints.
    pub fn hints(&self) -> Vec<&[u8]> {
        self.acceptable_cas.iter().map(Vec::as_slice).collect()
    }
}

/// How the choice is made.
#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    pub choice: Option<CertChoice>,
    pub remembered: Option<RememberedCertificate>,
    /// With exactly one eligible certificate, use it without asking.
    pub auto_select_single: bool,
    /// What the server asked for before the choice; `None` admits every certificate.
    pub server: Option<ServerRequest>,
    /// Issuers of the certificates besides the tokens' own (the `--chain` files).
    pub chain_pool: Vec<CertInfo>,
    /// Who signs in: certificates naming them come first.
    pub username: Option<String>,
}

/// Why no certificate was chosen.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// `details` lists the certificates and why each cannot be used.
    #[error("{summary}\n{details}")]
    NoUsableCertificate { summary: String, details: String },
    /// The certificate the user named will not do; `details` as above.
    #[error("{problem}\n{details}")]
    Named {
        problem: NamedProblem,
        details: String,
    },
    /// Several certificates can sign in and there is no one to ask which.
    #[error(
        "several certificates can sign in and there is no terminal to choose on:\n{}",
        choices.iter().map(Nameable::neutral).collect::<Vec<_>>().join("\n")
    )]
    NoTerminal { choices: Vec<Nameable> },
    #[error("choosing a certificate was cancelled")]
    Cancelled,
    /// The picker itself failed.
    #[error("{0}")]
    Picker(String),
}

impl SelectError {
    /// What the user can change to get a certificate chosen.
    pub fn remedy(&self) -> Option<Remedy> {
        matches!(self, Self::NoTerminal { .. }).then_some(Remedy::NameCertificate)
    }
}

/// What is wrong with the certificate the user named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "problem", content = "reason", rename_all = "camelCase")]
pub enum NamedProblem {
    #[error("no certificate on the tokens matches the certificate named")]
    Missing,
    /// It cannot sign in, and why.
    #[error("the certificate named cannot sign in: {0}")]
    Ineligible(String),
    #[error("the certificate named is not one the server accepts, so no PIN was asked")]
    NotAccepted,
}

/// A certificate as a user can name it: how it reads, its `pkcs11:` URI, and its SHA-256
/// thumbprint (when it parses).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nameable {
    pub description: String,
    pub uri: String,
    pub sha256: Option<String>,
}

impl Nameable {
    /// The certificate of `candidate`.
    pub fn of(tokens: &[TokenReport], candidate: Candidate) -> Self {
        let cert = candidate.cert(tokens);
        match &cert.cert {
            Ok(info) => Self {
                description: describe(info),
                uri: cert.uri.clone(),
                sha256: Some(info.sha256.clone()),
            },
            Err(_) => Self {
                description: format!("`{}`", cert.label),
                uri: cert.uri.clone(),
                sha256: None,
            },
        }
    }

    /// The lines that name it, each with `prefix` (how a program takes the choice).
    pub fn lines(&self, prefix: &str) -> String {
        let mut text = format!("  {}\n    {prefix}'{}'", self.description, self.uri);
        if let Some(sha256) = &self.sha256 {
            text.push_str(&format!("\n    {prefix}{sha256}"));
        }
        text
    }

    fn neutral(&self) -> String {
        self.lines("")
    }
}

/// Whether the server's CA names admit a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    Yes,
    /// Its chain could not be completed, so it can't be told.
    Uncertain,
    No,
}

/// What [`Fit::Uncertain`] adds to a picker row.
const UNCERTAIN: &str = "(uncertain: its chain could not be completed, the server may refuse it)";

/// The outcome: what to offer.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub candidates: Vec<Candidate>,
    /// Whether the user made (or confirmed) this choice now, so it may be remembered.
    pub freshly_chosen: bool,
}

pub fn select(
    tokens: &[TokenReport],
    options: &SelectOptions,
    chooser: &mut dyn Chooser,
) -> Result<Selection, SelectError> {
    let all: Vec<Candidate> = tokens
        .iter()
        .enumerate()
        .flat_map(|(t, token)| {
            (0..token.certificates.len()).map(move |c| Candidate { token: t, cert: c })
        })
        .collect();
    let judge = Judge::new(tokens, options);
    let mut eligible: Vec<Candidate> = all
        .iter()
        .copied()
        .filter(|c| c.cert(tokens).eligibility.is_eligible())
        .collect();
    let all_eligible = eligible.clone();
    eligible.retain(|c| judge.fit(*c) != Fit::No);
    eligible.sort_by_key(|c| (judge.fit(*c), judge.user_match(*c)));

    if let Some(choice) = &options.choice {
        return named(&judge, &all, choice);
    }
    if let Some(remembered) = &options.remembered {
        if let Some(selection) =
            remembered_one(&judge, &eligible, &all_eligible, remembered, chooser)
        {
            return Ok(selection);
        }
    }
    match eligible.len() {
        0 if !all_eligible.is_empty() => Err(judge.refused(
            "no certificate fits what the server accepts, so none was offered and no PIN was asked"
                .into(),
            &all_eligible,
        )),
        0 => Err(no_usable(
            tokens,
            "no certificate on the tokens can sign in".into(),
        )),
        1 if options.auto_select_single => Ok(Selection {
            candidates: eligible,
            freshly_chosen: true,
        }),
        _ => pick(&judge, eligible, chooser),
    }
}

/// The certificate `--cert` names, if it can sign in and the server accepts it.
fn named(
    judge: &Judge<'_>,
    all: &[Candidate],
    choice: &CertChoice,
) -> Result<Selection, SelectError> {
    let tokens = judge.tokens;
    let Some(named) = all
        .iter()
        .find(|c| choice.matches(c.token(tokens), c.cert(tokens)))
    else {
        return Err(SelectError::Named {
            problem: NamedProblem::Missing,
            details: unusable_details(tokens),
        });
    };
    let cert = named.cert(tokens);
    if !cert.eligibility.is_eligible() {
        return Err(SelectError::Named {
            problem: NamedProblem::Ineligible(cert.eligibility.describe()),
            details: unusable_details(tokens),
        });
    }
    if judge.fit(*named) == Fit::No {
        return Err(SelectError::Named {
            problem: NamedProblem::NotAccepted,
            details: judge.refusal_text(&[*named]),
        });
    }
    Ok(Selection {
        candidates: vec![*named],
        freshly_chosen: true,
    })
}

/// The remembered certificate when it is still there and fits; otherwise the user is told why
/// it is not used.
fn remembered_one(
    judge: &Judge<'_>,
    eligible: &[Candidate],
    all_eligible: &[Candidate],
    remembered: &RememberedCertificate,
    chooser: &mut dyn Chooser,
) -> Option<Selection> {
    let is_remembered = |c: &&Candidate| {
        c.cert(judge.tokens)
            .cert
            .as_ref()
            .is_ok_and(|info| info.sha256 == remembered.sha256)
    };
    if let Some(candidate) = eligible.iter().find(is_remembered) {
        return Some(Selection {
            candidates: vec![*candidate],
            freshly_chosen: false,
        });
    }
    let why = if all_eligible.iter().any(|c| is_remembered(&c)) {
        "is not one the server accepts"
    } else {
        "is not available any more"
    };
    chooser.notice(&format!(
        "The certificate remembered for this sign-in ({}) {why}; choose another.",
        remembered.description
    ));
    None
}

/// The user's pick among several eligible certificates.
fn pick(
    judge: &Judge<'_>,
    eligible: Vec<Candidate>,
    chooser: &mut dyn Chooser,
) -> Result<Selection, SelectError> {
    let tokens = judge.tokens;
    let rows: Vec<PickerRow> = eligible
        .iter()
        .map(|c| {
            let mut row = picker_row(tokens, *c);
            if judge.fit(*c) == Fit::Uncertain {
                row.title = format!("{} {UNCERTAIN}", row.title);
                row.details
                    .push(("Server".to_owned(), UNCERTAIN.to_owned()));
            }
            row
        })
        .collect();
    match chooser.choose(&rows) {
        Ok(Some(index)) => Ok(Selection {
            candidates: vec![eligible[index]],
            freshly_chosen: true,
        }),
        Ok(None) => Err(SelectError::Cancelled),
        Err(PickerError::NoTerminal) if all_on_one_token(&eligible) => {
            // No one to ask, but one token and one login: offer them all and let the server's
            // CA names decide.
            chooser.notice(
                "No terminal to choose on: offering every eligible certificate of the token.",
            );
            Ok(Selection {
                candidates: eligible,
                freshly_chosen: false,
            })
        }
        Err(PickerError::NoTerminal) => Err(SelectError::NoTerminal {
            choices: eligible.iter().map(|c| Nameable::of(tokens, *c)).collect(),
        }),
        Err(e) => Err(SelectError::Picker(e.to_string())),
    }
}

/// Judges candidates by the server's CA names and the username.
struct Judge<'a> {
    tokens: &'a [TokenReport],
    server: Option<&'a ServerRequest>,
    /// The `--chain` certificates and every certificate on the tokens.
    pool: Vec<CertInfo>,
    username: Option<String>,
}

impl<'a> Judge<'a> {
    fn new(tokens: &'a [TokenReport], options: &'a SelectOptions) -> Self {
        let server = options
            .server
            .as_ref()
            .filter(|s| !s.acceptable_cas.is_empty());
        let mut pool = options.chain_pool.clone();
        if server.is_some() {
            pool.extend(
                tokens
                    .iter()
                    .flat_map(|t| &t.certificates)
                    .filter_map(|c| c.cert.as_ref().ok().cloned()),
            );
        }
        Self {
            tokens,
            server,
            pool,
            username: options.username.as_ref().map(|u| u.to_lowercase()),
        }
    }

    fn chain(&self, candidate: Candidate) -> Option<ChainNames> {
        let info = candidate.cert(self.tokens).cert.as_ref().ok()?;
        Some(ChainNames::new(info, &self.pool))
    }

    fn fit(&self, candidate: Candidate) -> Fit {
        let Some(server) = self.server else {
            return Fit::Yes;
        };
        match self.chain(candidate).and_then(|c| c.fits(&server.hints())) {
            Some(true) => Fit::Yes,
            Some(false) => Fit::No,
            None => Fit::Uncertain,
        }
    }

    /// 0 when a UPN is the username, 1 when an RFC 822 name is, else 2.
    fn user_match(&self, candidate: Candidate) -> u8 {
        let (Some(user), Ok(info)) = (&self.username, &candidate.cert(self.tokens).cert) else {
            return 2;
        };
        let is_user = |names: &[String]| names.iter().any(|n| n.to_lowercase() == *user);
        if is_user(&info.upns) {
            0
        } else if is_user(&info.rfc822_names) {
            1
        } else {
            2
        }
    }

    /// The server's acceptable CAs and why each of `refused` does not fit.
    fn refused(&self, summary: String, refused: &[Candidate]) -> SelectError {
        SelectError::NoUsableCertificate {
            summary,
            details: self.refusal_text(refused),
        }
    }

    /// [`Self::refused`]'s details.
    fn refusal_text(&self, refused: &[Candidate]) -> String {
        let cas: Vec<String> = self
            .server
            .map(|s| s.acceptable_cas.iter().map(|n| dn_string(n)).collect())
            .unwrap_or_default();
        let refusals: Vec<String> = refused
            .iter()
            .filter_map(|c| {
                let info = c.cert(self.tokens).cert.as_ref().ok()?;
                let chain = self.chain(*c)?;
                Some(chain.refusal(&describe_on(info, &c.token(self.tokens).label)))
            })
            .collect();
        refusal_details(&cas, &refusals)
    }
}

fn all_on_one_token(candidates: &[Candidate]) -> bool {
    candidates
        .windows(2)
        .all(|pair| pair[0].token == pair[1].token)
}

/// The SAN values of one kind, or "(none)".
fn names_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// How a certificate is named in messages: "Alice Wilber <alice@woodgrove.com>".
pub fn describe(info: &CertInfo) -> String {
    match info.upns.first().or(info.rfc822_names.first()) {
        Some(user) => format!("{} <{user}>", info.display_name()),
        None => info.display_name(),
    }
}

/// A certificate and the token it is on, for messages.
pub fn describe_on(info: &CertInfo, token_label: &str) -> String {
    format!("{} on `{token_label}`", describe(info))
}

/// The server's acceptable CAs (DN strings) and why each certificate does not fit.
pub fn refusal_details(acceptable_cas: &[String], refusals: &[String]) -> String {
    let mut lines = Vec::new();
    if !acceptable_cas.is_empty() {
        lines.push(format!(
            "The server accepts certificates from: {}",
            acceptable_cas.join("; ")
        ));
    }
    lines.extend(refusals.iter().map(|r| format!("  {r}")));
    lines.join("\n")
}

/// Every certificate on the tokens and why it can't be used.
fn no_usable(tokens: &[TokenReport], summary: String) -> SelectError {
    SelectError::NoUsableCertificate {
        summary,
        details: unusable_details(tokens),
    }
}

/// [`no_usable`]'s details.
fn unusable_details(tokens: &[TokenReport]) -> String {
    let mut lines = Vec::new();
    for token in tokens {
        lines.push(format!(
            "Token `{}` ({}):",
            token.label,
            token.module.display()
        ));
        if token.certificates.is_empty() {
            lines.push("  no certificates".into());
        }
        for cert in &token.certificates {
            let name = cert
                .cert
                .as_ref()
                .map_or_else(|_| format!("`{}`", cert.label), describe);
            let verdict = if cert.eligibility.is_eligible() {
                "could sign in".to_owned()
            } else {
                cert.eligibility.describe()
            };
            lines.push(format!("  {name}: {verdict}"));
        }
    }
    if tokens.is_empty() {
        lines.push(
            "No tokens were found. Is the card inserted, and its PKCS#11 module installed?".into(),
        );
    }
    lines.join("\n")
}

/// What the picker shows of a candidate.
pub fn picker_row(tokens: &[TokenReport], candidate: Candidate) -> PickerRow {
    let token = candidate.token(tokens);
    let cert = candidate.cert(tokens);
    let Ok(info) = &cert.cert else {
        return PickerRow {
            title: cert.label.clone(),
            issuer: "?".into(),
            expires: "?".into(),
            token: token.label.clone(),
            details: Vec::new(),
        };
    };
    let ekus = info.extended_key_usage_names();
    let details = vec![
        ("Subject".to_owned(), info.subject.clone()),
        ("Issuer".to_owned(), info.issuer.clone()),
        ("Serial number".to_owned(), info.serial_hex()),
        (
            "Valid".to_owned(),
            format!("{} to {}", info.not_before.date(), info.not_after.date()),
        ),
        ("User principal name".to_owned(), names_or_none(&info.upns)),
        ("RFC 822 name".to_owned(), names_or_none(&info.rfc822_names)),
        ("Key type".to_owned(), info.key_description()),
        (
            "Policy OIDs".to_owned(),
            if info.policies.is_empty() {
                "(none)".into()
            } else {
                info.policies.join(", ")
            },
        ),
        (
            "Extended key usage".to_owned(),
            if ekus.is_empty() {
                "(any)".into()
            } else {
                ekus.join(", ")
            },
        ),
        ("SHA-1 thumbprint".to_owned(), info.sha1.to_uppercase()),
        ("SHA-256 thumbprint".to_owned(), info.sha256.to_uppercase()),
        (
            "Token".to_owned(),
            format!("{} (serial {})", token.label, token.serial),
        ),
        ("Key".to_owned(), format!("CKA_ID {}", hex(&cert.id))),
    ];
    PickerRow {
        title: describe(info),
        issuer: info.issuer_display_name(),
        expires: info.not_after.date().to_string(),
        token: token.label.clone(),
        details,
    }
}
