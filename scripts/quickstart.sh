#!/usr/bin/env bash
# Quick start: install what is missing, build both programs, and run the demo on the embedded
# Woodgrove tenant (fixtures on SoftHSM, the reference verifier, sign-ins against it).
#
# One build profile: debug, the one `cargo test` uses, so the README's next command (`cargo test`)
# reuses this build. Cargo's progress is shown, and the demo runs the built binary directly (a
# `cargo run` would be a second trip through cargo). Arguments go to `certauth demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Where cargo puts the build (CARGO_TARGET_DIR or a config may move it from ./target).
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target_dir=${target_dir:-target}

if [ -x "$target_dir/debug/certauth" ] && [ -x "$target_dir/debug/certauth-verifier" ]; then
  echo "quickstart: building certauth and certauth-verifier (debug); already built once, so this takes seconds unless the sources changed"
else
  echo "quickstart: building certauth and certauth-verifier (debug) for the first time: cargo downloads and compiles"
  echo "            about 230 crates: 9 to 15 minutes on 2 cores (9 and 14 measured on a shared 2-core machine), less with more cores;"
  echo "            later builds take seconds"
fi
# The demo runs certauth-verifier beside certauth, so build both.
cargo build --locked --bins
echo "quickstart: running $target_dir/debug/certauth demo $*"
exec "$target_dir/debug/certauth" demo "$@"
