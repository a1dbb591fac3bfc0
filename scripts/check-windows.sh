#!/usr/bin/env bash
# Checks that the library and both programs still build for Windows (x86_64-pc-windows-gnu), so
# the cfg gates around Unix-only code stay honest. Nothing is run: the test suite is Linux-only.
# Needs the MinGW C compiler (gcc-mingw-w64-x86-64, which scripts/setup.sh installs) for the C
# parts of ring and SQLite, and rustup to add the target's standard library.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  echo "check-windows: adding the $target standard library"
  rustup target add "$target"
fi
echo "check-windows: cargo check --target $target --lib --bins"
cargo check --locked --target "$target" --lib --bins
echo "check-windows: the library and both programs build for $target"
