//! `certauth demo` and `certauth fixture`: the options into the library's demo
//! ([`certauth::demo`]), which prints as it goes.

use certauth::demo::{self, DemoOptions};

use crate::cli::{DemoArgs, FixtureArgs, FixtureSource};

fn source(args: &FixtureSource) -> demo::FixtureSource {
    demo::FixtureSource {
        spec: args.spec.clone(),
        softhsm_module: args.softhsm_module.clone(),
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let options = DemoOptions {
        source: source(&args.source),
        dir: args.dir.clone(),
        keep: args.keep,
        serve: args.serve,
        crl_port: args.crl_port,
    };
    Ok(demo::run(&options, &mut std::io::stdout().lock())?)
}

pub fn provision_only(args: &FixtureArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    Ok(demo::provision_into(
        &source(&args.source),
        &args.dir,
        args.json,
        &mut out,
    )?)
}
