//! The second half of `certauth demo`: a real verifier process serving the demo tenant, then real
//! sign-ins against it: Bob (choosing in the picker when there is a terminal), and the seed's
//! Step 5, where the policy OID rule makes Alice's certificate multifactor. The verifier is handed
//! back to the caller, which stops it (by its PID) or keeps it up for `--serve`.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context};
use certauth::fixtures::spec::Spec;
use certauth::fixtures::Fixture;
use certauth::picker::choice::CertChoice;
use certauth::pin::login::{PinPrompt, PinPromptError, PinRequest};
use certauth::pin::{PinAsker, PinSource};
use certauth::signin::select::{self, SelectOptions};
use certauth::signin::{self as flow, ClientOptions};
use certauth::token::discovery::{self, DiscoveryOptions};
use certauth::token::inventory::{self, ScanOptions};
use certauth::x509::cert_info::CertInfo;
use secrecy::{ExposeSecret, SecretString};

use crate::signin::{print_answer, TerminalChooser};

/// The verifier process, stopped (by its PID) when dropped.
pub struct VerifierProcess {
    child: Child,
    pub url: reqwest::Url,
    pub server_ca: PathBuf,
}

impl VerifierProcess {
    /// How the verifier ended, once it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for VerifierProcess {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_verifier(fixture: &Fixture) -> anyhow::Result<VerifierProcess> {
    let exe = std::env::current_exe()?;
    let verifier = exe.with_file_name(format!("certauth-verifier{}", std::env::consts::EXE_SUFFIX));
    if !verifier.exists() {
        return Err(anyhow!(
            "{} is missing: build both programs (cargo build) to run the demo sign-in",
            verifier.display()
        ));
    }
    let mut child = Command::new(&verifier)
        .args(["serve", "--state-dir"])
        .arg(fixture.dir.join("verifier"))
        .arg("--tenant")
        .arg(&fixture.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", verifier.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout from the verifier"))?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut server_ca) = (None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("  certauth endpoint") {
            url = Some(reqwest::Url::parse(rest.trim())?);
        } else if let Some(rest) = line.strip_prefix("  server CA") {
            server_ca = Some(PathBuf::from(rest.trim()));
        } else if line.starts_with("Sign in") {
            break;
        }
    }
    // Keep reading what the verifier prints, so it never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    match (url, server_ca) {
        (Some(url), Some(server_ca)) => Ok(VerifierProcess {
            child,
            url,
            server_ca,
        }),
        _ => Err(anyhow!("the verifier did not say where it listens")),
    }
}

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
        eprintln!("{}", certauth::printable::printable_message(message));
    }
}

/// Starts the verifier and runs the sign-ins of the demo story; the verifier is left running.
pub fn run(
    out: &mut impl Write,
    fixture: &Fixture,
    spec: &Spec,
) -> anyhow::Result<VerifierProcess> {
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

    let discovered = discovery::discover(&DiscoveryOptions {
        no_registry: true,
        command_line: vec![fixture.manifest.module.clone()],
        ..DiscoveryOptions::default()
    });
    let (modules, mut reports) =
        inventory::load_modules(&discovered, certauth::token::module::deadline_from_env());
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
    // As `certauth sign-in` does: the server's acceptable CAs decide what is offered, the user's
    // own certificates first; the tenant's CA certificates complete the chains.
    let server = flow::reach_server(&client_options)?;
    let chain_pool: Vec<CertInfo> = fixture
        .manifest
        .authorities
        .iter()
        .filter_map(|ca| std::fs::read(fixture.path(&ca.certificate_der)).ok())
        .filter_map(|der| CertInfo::from_der(&der).ok())
        .collect();

    // The picker lists every token's certificates, so its heading gives every token's PIN.
    let demo_pins = spec
        .tokens
        .iter()
        .map(|t| format!("`{}` {}", t.label, t.pin.expose_secret()))
        .collect::<Vec<_>>()
        .join(", ");
    let sign_in = |out: &mut dyn Write,
                   title: &str,
                   username: &str,
                   certificate: Option<&str>,
                   token: &str|
     -> anyhow::Result<()> {
        writeln!(out, "\n{title}")?;
        let choice = match certificate {
            Some(name) => {
                let sha = &fixture
                    .manifest
                    .certificate(name)
                    .ok_or_else(|| anyhow!("no fixture certificate {name}"))?
                    .sha256;
                Some(sha.parse::<CertChoice>()?)
            }
            None => None,
        };
        let pin = spec
            .token(token)
            .map(|t| t.pin.clone())
            .ok_or_else(|| anyhow!("no fixture token {token}"))?;
        let mut chooser = TerminalChooser {
            heading: format!(
                "Choose a certificate to sign in as {username} (demo PINs, by token: {demo_pins})"
            ),
        };
        let selection = select::select(
            &tokens,
            &SelectOptions {
                choice,
                remembered: None,
                auto_select_single: true,
                server: server.clone(),
                chain_pool: chain_pool.clone(),
                username: Some(username.to_owned()),
            },
            &mut chooser,
        )?;
        let prepared = if interactive && certificate.is_none() {
            flow::prepare(
                &modules,
                &tokens,
                &selection,
                &mut PinAsker::new(PinSource::Terminal),
                &client_options,
            )?
        } else {
            flow::prepare(
                &modules,
                &tokens,
                &selection,
                &mut FixturePin(pin),
                &client_options,
            )?
        };
        let answer = runtime.block_on(prepared.sign_in(&verifier.url, username))?;
        let mut text = Vec::new();
        print_answer(&mut text, &answer, prepared.resolver.report().offered)?;
        for line in String::from_utf8_lossy(&text).lines() {
            writeln!(out, "  {line}")?;
        }
        Ok(())
    };

    let bob_title = if interactive {
        "Bob signs in: choose a certificate (his own first; only those the server accepts)"
    } else {
        "Bob signs in with his P-256 certificate (no terminal, so no picker: --cert)"
    };
    sign_in(
        out,
        bob_title,
        "bob@woodgrove.com",
        (!interactive).then_some("bob-p256-rfc822"),
        "Woodgrove Bob",
    )?;
    sign_in(
        out,
        "Step 5: Alice with her everyday certificate (only the issuer rule matches)",
        "alice@woodgrove.com",
        Some("alice-p384"),
        "Woodgrove Alice",
    )?;
    sign_in(
        out,
        "Step 5: Alice with the certificate carrying policy OID 1.2.3.4 (the OID rule wins)",
        "alice@woodgrove.com",
        Some("alice-rsa2048-mfa"),
        "Woodgrove Alice",
    )?;
    sign_in(
        out,
        "Bob with a certificate revoked in the delta CRL",
        "bob@woodgrove.com",
        Some("bob-delta-revoked"),
        "Woodgrove Bob",
    )?;
    Ok(verifier)
}
