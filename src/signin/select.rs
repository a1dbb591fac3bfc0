//! Which certificate(s) a sign-in offers: the one `--cert` names, else the one remembered for
//! this endpoint and user, else the only eligible one, else the user's pick.

use super::error::SignInError;
use crate::picker::choice::CertChoice;
use crate::picker::remembered::RememberedCertificate;
use crate::picker::terminal::{PickerError, PickerRow};
use crate::token::inventory::{CertificateReport, TokenReport};
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

/// How the choice is made.
#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    pub choice: Option<CertChoice>,
    pub remembered: Option<RememberedCertificate>,
    /// With exactly one eligible certificate, use it without asking.
    pub auto_select_single: bool,
}

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
) -> Result<Selection, SignInError> {
    let all: Vec<Candidate> = tokens
        .iter()
        .enumerate()
        .flat_map(|(t, token)| {
            (0..token.certificates.len()).map(move |c| Candidate { token: t, cert: c })
        })
        .collect();
    let eligible: Vec<Candidate> = all
        .iter()
        .copied()
        .filter(|c| c.cert(tokens).eligibility.is_eligible())
        .collect();

    if let Some(choice) = &options.choice {
        let Some(named) = all
            .iter()
            .find(|c| choice.matches(c.token(tokens), c.cert(tokens)))
        else {
            return Err(no_usable(
                tokens,
                "no certificate on the tokens matches --cert".into(),
            ));
        };
        let cert = named.cert(tokens);
        if !cert.eligibility.is_eligible() {
            return Err(no_usable(
                tokens,
                format!(
                    "the certificate --cert names cannot sign in: {}",
                    cert.eligibility.describe()
                ),
            ));
        }
        return Ok(Selection {
            candidates: vec![*named],
            freshly_chosen: true,
        });
    }

    if let Some(remembered) = &options.remembered {
        let found = eligible.iter().find(|c| {
            c.cert(tokens)
                .cert
                .as_ref()
                .is_ok_and(|info| info.sha256 == remembered.sha256)
        });
        match found {
            Some(candidate) => {
                return Ok(Selection {
                    candidates: vec![*candidate],
                            freshly_chosen: false,
                })
            }
            None => chooser.notice(&format!(
                "The certificate remembered for this sign-in ({}) is not available any more; choose another.",
                remembered.description
            )),
        }
    }

    match eligible.len() {
        0 => Err(no_usable(
            tokens,
            "no certificate on the tokens can sign in".into(),
        )),
        1 if options.auto_select_single => Ok(Selection {
            candidates: eligible,
            freshly_chosen: true,
        }),
        _ => {
            let rows: Vec<PickerRow> = eligible.iter().map(|c| picker_row(tokens, *c)).collect();
            match chooser.choose(&rows) {
                Ok(Some(index)) => Ok(Selection {
                    candidates: vec![eligible[index]],
                            freshly_chosen: true,
                }),
                Ok(None) => Err(SignInError::Cancelled),
                Err(PickerError::NoTerminal) if all_on_one_token(&eligible) => {
                    // No one to ask, but one token and one login: offer them all and let the
                    // server's CA names decide.
                    chooser.notice("No terminal to choose on: offering every eligible certificate of the token.");
                    Ok(Selection {
                        candidates: eligible,
                                    freshly_chosen: false,
                    })
                }
                Err(PickerError::NoTerminal) => Err(SignInError::NoUsableCertificate {
                    summary: "several certificates can sign in and there is no terminal to choose on; name one with --cert".into(),
                    details: eligible
                        .iter()
                        .map(|c| describe_candidate(tokens, *c))
                        .collect::<Vec<_>>()
                        .join("\n"),
                }),
                Err(e) => Err(SignInError::Setup(e.to_string())),
            }
        }
    }
}

fn all_on_one_token(candidates: &[Candidate]) -> bool {
    candidates
        .windows(2)
        .all(|pair| pair[0].token == pair[1].token)
}

/// One line per certificate for `--cert`: its URI and thumbprint.
fn describe_candidate(tokens: &[TokenReport], candidate: Candidate) -> String {
    let cert = candidate.cert(tokens);
    let name = cert
        .cert
        .as_ref()
        .map_or_else(|_| cert.label.clone(), super::identity::describe);
    let thumbprint = cert
        .cert
        .as_ref()
        .map(|i| i.sha256.clone())
        .unwrap_or_default();
    format!(
        "  {name}\n    --cert '{}'\n    --cert {thumbprint}",
        cert.uri
    )
}

/// Every certificate on the tokens and why it can't be used.
fn no_usable(tokens: &[TokenReport], summary: String) -> SignInError {
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
                .map_or_else(|_| format!("`{}`", cert.label), super::identity::describe);
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
    SignInError::NoUsableCertificate {
        summary,
        details: lines.join("\n"),
    }
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
        (
            "User principal name".to_owned(),
            info.upns
                .first()
                .cloned()
                .unwrap_or_else(|| "(none)".into()),
        ),
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
        title: super::identity::describe(info),
        issuer: info
            .issuer
            .rsplit(',')
            .find_map(|rdn| rdn.strip_prefix("CN="))
            .unwrap_or(&info.issuer)
            .to_owned(),
        expires: info.not_after.date().to_string(),
        token: token.label.clone(),
        details,
    }
}
