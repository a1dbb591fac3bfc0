#!/usr/bin/env bash
# Quick start: install what is missing, build both programs, and run the demo on the embedded
# Woodgrove tenant (fixtures on SoftHSM, the reference verifier, sign-ins against it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The demo runs certauth-verifier beside certauth, so build both.
cargo build --locked --quiet --bins
exec cargo run --locked --quiet --bin certauth -- demo "$@"
