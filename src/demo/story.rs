//! The demo's sign-ins against its verifier: Bob (choosing in the picker when there is a
//! terminal), and the seed's Step 5, where the policy OID rule makes Alice's certificate
//! multifactor.

use std::io::{IsTerminal, Write};

use secrecy::{ExposeSecret, SecretString};

use super::error::{demo_error, DemoError};
use super::verifier_process::{start_verifier, VerifierProcess};
use crate::fixtures::spec::Spec;
use crate::fixtures::Fixture;
use crate::picker::choice::CertChoice;
use crate::picker::select::{self, SelectOptions};
use crate::pin::{PinAsker, PinSource};
use crate::signin::answer_text::write_answer;
use crate::signin::error::SignInError;
use crate::signin::terminal_chooser::TerminalChooser;
use crate::signin::{self as flow, ClientOptions};
use crate::token::discovery::{self, DiscoveryOptions};
use crate::token::inventory::{self, ScanOptions};
use crate::token::login::{PinPrompt, PinPromptError, PinRequest};
use crate::x509::cert_info::CertInfo;

/// The fixture's PIN, for a demo that nobody is typing into.
struct FixturePin(SecretString);

impl PinPrompt for FixturePin {
    fn ask(&mut self, _: &PinRequest<'_>) -> Result<Option<SecretString>, PinPromptError> {
        Ok(Some(self.0.clone()))
    }
    fn can_retry(&self) -> bool {
        false
    }
    fn confirm_final_try(&mut self, _: &str) -> bool {
        false
    }
    fn notice(&mut self, message: &str) {
        eprintln!("{}", crate::printable::printable_message(message));
    }
}

/// One sign-in of the story: its title, who, with which certificate (the picker when `None`),
/// and the token whose PIN the fixture knows.
struct Step<'a> {
    title: &'a str,
    username: &'a str,
    certificate: Option<&'a str>,
    token: &'a str,
}

/// What every sign-in of the story shares: the tokens, the server and how to reach it.
struct Story<'a> {
    fixture: &'a Fixture,
    spec: &'a Spec,
    verifier: &'a VerifierProcess,
    modules: Vec<crate::token::module::LoadedModule>,
    tokens: Vec<crate::token::inventory::TokenReport>,
    runtime: tokio::runtime::Runtime,
    client_options: ClientOptions,
    server: Option<crate::picker::select::ServerRequest>,
    chain_pool: Vec<CertInfo>,
    /// Whether a person is at the terminal: Bob then chooses in the picker and types his PIN.
    interactive: bool,
}

/// Starts the verifier and runs the sign-ins of the demo story; the verifier is left running.
pub fn run(
    out: &mut impl Write,
    fixture: &Fixture,
    spec: &Spec,
) -> Result<VerifierProcess, DemoError> {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let verifier = start_verifier(fixture)?;
    writeln!(
        out,
        "\nThe reference verifier serves the Woodgrove tenant at {}",
        verifier.url
    )?;
    writeln!(
        out,
        "  policy: the seed's Step 5 (issuer rule single-factor, policy OID 1.2.3.4 multifactor)"
    )?;
    let story = Story::new(fixture, spec, &verifier, interactive)?;
    let bob_title = if interactive {
        "Bob signs in: choose a certificate (his own first; only those the server accepts)"
    } else {
        "Bob signs in with his P-256 certificate (no terminal, so no picker: --cert)"
    };
    let steps = [
        Step {
            title: bob_title,
            username: "bob@woodgrove.com",
            certificate: (!interactive).then_some("bob-p256-rfc822"),
            token: "Woodgrove Bob",
        },
        Step {
            title: "Step 5: Alice with her everyday certificate (only the issuer rule matches)",
            username: "alice@woodgrove.com",
            certificate: Some("alice-p384"),
            token: "Woodgrove Alice",
        },
        Step {
            title:
                "Step 5: Alice with the certificate carrying policy OID 1.2.3.4 (the OID rule wins)",
            username: "alice@woodgrove.com",
            certificate: Some("alice-rsa2048-mfa"),
            token: "Woodgrove Alice",
        },
        Step {
            title: "Bob with a certificate revoked in the delta CRL",
            username: "bob@woodgrove.com",
            certificate: Some("bob-delta-revoked"),
            token: "Woodgrove Bob",
        },
    ];
    for step in &steps {
        story.sign_in(out, step)?;
    }
    drop(story);
    Ok(verifier)
}

impl<'a> Story<'a> {
    fn new(
        fixture: &'a Fixture,
        spec: &'a Spec,
        verifier: &'a VerifierProcess,
        interactive: bool,
    ) -> Result<Self, DemoError> {
        let discovered = discovery::discover(&DiscoveryOptions {
            no_registry: true,
            command_line: vec![fixture.manifest.module.clone()],
            ..DiscoveryOptions::default()
        });
        let (modules, mut reports) =
            inventory::load_modules(&discovered, crate::token::module::deadline_from_env());
        let tokens = inventory::scan(&modules, &mut reports, &ScanOptions::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let client_options = ClientOptions {
            ca_file: Some(verifier.server_ca.clone()),
            preflight: Some(verifier.url.clone()),
            ..ClientOptions::default()
        };
        // As `certauth sign-in` does: the server's acceptable CAs decide what is offered, the
        // user's own certificates first; the tenant's CA certificates complete the chains.
        let server = flow::reach_server(&client_options)?;
        let chain_pool: Vec<CertInfo> = fixture
            .manifest
            .authorities
            .iter()
            .filter_map(|ca| std::fs::read(fixture.path(&ca.certificate_der)).ok())
            .filter_map(|der| CertInfo::from_der(&der).ok())
            .collect();
        Ok(Self {
            fixture,
            spec,
            verifier,
            modules,
            tokens,
            runtime,
            client_options,
            server,
            chain_pool,
            interactive,
        })
    }

    /// The picker's heading: it lists every token's certificates, so it gives every token's PIN.
    fn heading(&self, username: &str) -> String {
        let demo_pins = self
            .spec
            .tokens
            .iter()
            .map(|t| format!("`{}` {}", t.label, t.pin.expose_secret()))
            .collect::<Vec<_>>()
            .join(", ");
        format!("Choose a certificate to sign in as {username} (demo PINs, by token: {demo_pins})")
    }

    fn sign_in(&self, out: &mut impl Write, step: &Step<'_>) -> Result<(), DemoError> {
        writeln!(out, "\n{}", step.title)?;
        let choice = match step.certificate {
            Some(name) => {
                let sha = &self
                    .fixture
                    .manifest
                    .certificate(name)
                    .ok_or_else(|| demo_error!("no fixture certificate {name}"))?
                    .sha256;
                Some(
                    sha.parse::<CertChoice>()
                        .map_err(|e| demo_error!("fixture certificate {name}: {e}"))?,
                )
            }
            None => None,
        };
        let pin = self
            .spec
            .token(step.token)
            .map(|t| t.pin.clone())
            .ok_or_else(|| demo_error!("no fixture token {}", step.token))?;
        let mut chooser = TerminalChooser {
            heading: self.heading(step.username),
        };
        let options = SelectOptions {
            choice,
            remembered: None,
            auto_select_single: true,
            server: self.server.clone(),
            chain_pool: self.chain_pool.clone(),
            username: Some(step.username.to_owned()),
        };
        let selection =
            select::select(&self.tokens, &options, &mut chooser).map_err(SignInError::from)?;
        let mut typed = PinAsker::new(PinSource::Terminal);
        let mut known = FixturePin(pin);
        let prompt: &mut dyn PinPrompt = if self.interactive && step.certificate.is_none() {
            &mut typed
        } else {
            &mut known
        };
        let prepared = flow::prepare(
            &self.modules,
            &self.tokens,
            &selection,
            prompt,
            &self.client_options,
        )?;
        let answer = self
            .runtime
            .block_on(prepared.sign_in(&self.verifier.url, step.username))?;
        let mut text = Vec::new();
        write_answer(&mut text, &answer, prepared.resolver.report().offered)?;
        for line in String::from_utf8_lossy(&text).lines() {
            writeln!(out, "  {line}")?;
        }
        Ok(())
    }
}
