#!/usr/bin/env bash
# Checks that the library and both programs still build for Windows (x86_64-pc-windows-gnu), so
# the cfg gates around Unix-only code stay honest. Nothing is run: the test suite is Linux-only.
# Needs the MinGW C compiler (gcc-mingw-w64-x86-64, installed here when missing, as root) for the
# C parts of ring and SQLite, and rustup to add the target's standard library.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "check-windows: needs the MinGW C compiler: sudo apt-get install -y gcc-mingw-w64-x86-64" >&2
    exit 1
  fi
  echo "check-windows: installing gcc-mingw-w64-x86-64"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc-mingw-w64-x86-64
fi

target=x86_64-pc-windows-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  echo "check-windows: adding the $target standard library"
  if ! rustup target add "$target"; then
    # A toolchain that cannot change (read-only, or no way to fetch the component) is a fact of
    # the machine, not of the code: say so loudly rather than fail every other check with it.
    echo "check-windows: *** SKIPPED: rustup could not add $target here; run scripts/check-windows.sh where it can ***" >&2
    exit 0
  fi
fi
echo "check-windows: cargo check --target $target --lib --bins"
cargo check --locked --target "$target" --lib --bins
echo "check-windows: the library and both programs build for $target"
