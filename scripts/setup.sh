#!/usr/bin/env bash
# Installs the system packages certauth builds and tests with, on Debian or Ubuntu.
# As root it runs apt-get; otherwise it prints the sudo line to run and exits 1.
# It installs nothing that is already there, so it is cheap to run again.
set -euo pipefail

packages=(
  build-essential pkg-config ca-certificates  # C toolchain for ring and rusqlite
  softhsm2                                     # PKCS#11 test tokens
  opensc                                       # opensc-pkcs11.so, pkcs11-tool
  p11-kit p11-kit-modules libp11-kit-dev       # the agent's module hosts (p11-kit server and client); pkcs11.h for the test module
  pcscd libpcsclite-dev pcsc-tools             # PC/SC daemon and headers for the pcsc crate
  vsmartcard-vpcd                              # virtual reader driver for the PC/SC test rig
  util-linux iproute2                          # unshare and ip for the isolated rig
  tmux pinentry-tty                            # drive the terminal picker and pinentry in tests
  curl libengine-pkcs11-openssl                # a third-party PKCS#11 client in tests and benchmarks
  libdbus-1-dev                                # the agent's keyring cache talks to the Secret Service over D-Bus
  dbus-daemon dbus-bin gnome-keyring           # a real Secret Service (dbus-run-session) in the agent's tests
  systemd desktop-file-utils                   # systemd-analyze verify and desktop-file-validate for packaging/
  man-db bash-completion                       # man -w and the completion loader for the .deb's checks
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: these packages are missing: ${missing[*]}" >&2
    echo "setup: install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install a Rust toolchain (1.88 or newer) with rustup: https://rustup.rs" >&2
  exit 1
fi
echo "setup: system packages are in place"
