//! `certauth demo`: provisions the Woodgrove fixture on SoftHSM tokens, serves its CRLs, runs a
//! real verifier process, and signs in against it as the seed's Step 5 tells; with `serve`, it
//! then keeps everything up for the user's own sign-ins until a stop signal.

mod crls;
pub mod error;
mod story;
mod text;
mod verifier_process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crls::{check_crls, CrlServer};
use error::{demo_error, DemoError, Step};
use verifier_process::VerifierProcess;

use crate::fixtures::spec::Spec;
use crate::fixtures::{self, ProvisionOptions};
use crate::stop_signal::stop_signal;
pub use text::print_fixture;

/// What to provision, and with which SoftHSM.
#[derive(Debug, Clone, Default)]
pub struct FixtureSource {
    /// A fixture spec instead of the embedded Woodgrove spec.
    pub spec: Option<PathBuf>,
    /// A SoftHSM module instead of the one found in the usual places.
    pub softhsm_module: Option<PathBuf>,
}

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    pub source: FixtureSource,
    /// Provision into this directory (new or empty) instead of a temporary one; it is kept.
    pub dir: Option<PathBuf>,
    /// Keep the temporary directory when the demo ends.
    pub keep: bool,
    /// Keep the tokens, the CRL server and the verifier up until a stop signal.
    pub serve: bool,
    /// Loopback port for the CRL server (0 picks a free one).
    pub crl_port: u16,
}

/// Runs the demo, printing to `out`.
pub fn run(options: &DemoOptions, out: &mut impl Write) -> Result<(), DemoError> {
    let (spec, provision) = load(&options.source)?;
    let temporary = match &options.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("certauth-demo-")
                .tempdir()
                .step(|| "cannot create a temporary directory for the demo".to_owned())?,
        ),
    };
    let dir = match (&options.dir, &temporary) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_owned(),
        (None, None) => unreachable!("a temporary directory exists when no directory is given"),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .step(|| "cannot start the async runtime".to_owned())?;
    let started = Instant::now();
    let (fixture, outcome) = fixtures::provision(&spec, &dir, &provision)?;
    print_fixture(out, &fixture, outcome, started.elapsed())?;

    let crls = runtime.block_on(CrlServer::start(&fixture, options.crl_port))?;
    writeln!(out, "\nCRLs published on http://{}", crls.addr)?;
    runtime.block_on(check_crls(out, &fixture, &crls))?;
    let verifier = story::run(out, &fixture, &spec)?;
    let demo = Running {
        fixture,
        spec,
        verifier,
        crls,
        runtime,
        temporary,
    };
    if options.serve {
        return demo.serve(out);
    }
    demo.finish(out, options.keep, dir)
}

/// What the demo has up once its sign-ins are done.
struct Running {
    fixture: fixtures::Fixture,
    spec: Spec,
    verifier: VerifierProcess,
    crls: CrlServer,
    runtime: tokio::runtime::Runtime,
    /// The demo's directory, when the demo made it.
    temporary: Option<tempfile::TempDir>,
}

impl Running {
    /// Keeps everything up until a stop signal (or the verifier ending), then stops it all.
    fn serve(self, out: &mut impl Write) -> Result<(), DemoError> {
        let Self {
            fixture,
            spec,
            mut verifier,
            crls,
            runtime,
            temporary,
        } = self;
        // Stop signals are caught from here on, before the lines that invite them are printed,
        // and end in the clean-up below. Not earlier: at the demo's own PIN prompt a Ctrl-C must
        // still stop the demo (the verifier, in the same process group, stops too).
        let stop = {
            let _context = runtime.enter();
            stop_signal().step(|| "cannot listen for stop signals".to_owned())?
        };
        let lines = text::sign_in_lines(&fixture, &spec, &verifier)?;
        let temporary_dir = temporary.is_some();
        text::print_serving(out, &fixture, &verifier, crls.addr, &lines, temporary_dir)?;
        out.flush()?;
        let ended = runtime.block_on(serve_until(stop, &mut verifier));
        // The verifier first: its state directory is inside the fixture's.
        drop(verifier);
        runtime.block_on(crls.stop())?;
        let removed = match temporary {
            Some(temp) => {
                let path = temp.path().to_owned();
                temp.close()
                    .step(|| format!("cannot remove {}", path.display()))?;
                format!(" and removed {}", path.display())
            }
            None => String::new(),
        };
        match ended {
            None => {
                writeln!(out, "\nStopped the verifier and the CRL server{removed}.")?;
                Ok(())
            }
            Some(status) => Err(demo_error!(
                "the verifier stopped on its own ({status}); stopped the CRL server{removed}"
            )),
        }
    }

    /// Stops the servers, removes the temporary directory unless `keep`, and says what next.
    fn finish(self, out: &mut impl Write, keep: bool, dir: PathBuf) -> Result<(), DemoError> {
        drop(self.verifier);
        self.runtime.block_on(self.crls.stop())?;
        let kept = match self.temporary {
            Some(temp) if keep => Some(temp.keep()),
            Some(temp) => {
                temp.close()
                    .step(|| "cannot remove the demo directory".to_owned())?;
                None
            }
            None => Some(dir),
        };
        text::print_next_steps(out, &self.fixture, &self.spec, kept.as_deref())
    }
}

/// `certauth fixture`: provisions the fixture into `dir` (or finds it there already), and prints
/// its manifest (`json`) or a summary.
pub fn provision_into(
    source: &FixtureSource,
    dir: &Path,
    json: bool,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    let (spec, options) = load(source)?;
    let started = Instant::now();
    let (fixture, outcome) = fixtures::provision(&spec, dir, &options)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &fixture.manifest)
            .step(|| "cannot write the manifest".to_owned())?;
        writeln!(out)?;
    } else {
        print_fixture(out, &fixture, outcome, started.elapsed())?;
        writeln!(
            out,
            "\nUse the tokens with: export SOFTHSM2_CONF={}",
            fixture.softhsm2_conf().display()
        )?;
    }
    Ok(())
}

/// The spec to provision and the options to provision it with.
fn load(source: &FixtureSource) -> Result<(Spec, ProvisionOptions), DemoError> {
    let spec = match &source.spec {
        Some(path) => Spec::load(path)?,
        None => Spec::embedded_woodgrove()?,
    };
    let options = ProvisionOptions {
        module: source.softhsm_module.clone(),
        ..ProvisionOptions::default()
    };
    Ok((spec, options))
}

/// Waits for `stop`; `Some` with the verifier's exit status if it ended first. A Ctrl-C on the
/// terminal reaches the verifier too (same process group), so a verifier that just ended is given
/// a moment for the signal to arrive here as well before it counts as having stopped on its own.
async fn serve_until(
    stop: impl std::future::Future<Output = ()>,
    verifier: &mut VerifierProcess,
) -> Option<std::process::ExitStatus> {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return None,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(status) = verifier.exited() {
                    return match tokio::time::timeout(Duration::from_secs(1), &mut stop).await {
                        Ok(()) => None,
                        Err(_) => Some(status),
                    };
                }
            }
        }
    }
}
