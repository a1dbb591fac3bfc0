#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the demo on the embedded Woodgrove tenant.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --locked --quiet --bin certauth -- demo "$@"
