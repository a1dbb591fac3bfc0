#!/usr/bin/env bash
# CI: build the Debian package with cargo-deb, check what is in it, install it with dpkg, run both
# programs from /usr/bin, check the systemd user units with systemd-analyze and the autostart entry
# with desktop-file-validate, then purge the package again (unless certauth was installed before).
# As root it installs; otherwise it builds and checks the .deb and says what it skipped.
# It writes only under target/ (and a temporary directory it removes).
set -euo pipefail
cd "$(dirname "$0")/.."

# The cargo-deb release known to build with our toolchain (rustc 1.95; cargo-deb 3.8 needs 1.85).
CARGO_DEB_VERSION=3.8.0
UNITS=(certauth-agent.service certauth-agent.socket)
USER_UNIT_DIR=/usr/lib/systemd/user
AUTOSTART=/etc/xdg/autostart/certauth.desktop

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
if [ -z "$version" ]; then
  echo "package-deb: cannot read the package version from Cargo.toml" >&2
  exit 1
fi

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package-deb: installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
echo "package-deb: $(cargo deb --version)"

echo "package-deb: building the release binaries and the .deb (cargo deb --locked)"
# cargo-deb prints the path of the package it made as the last line on stdout.
deb=$(cargo deb --locked | tail -n1)
if [ ! -f "$deb" ]; then
  echo "package-deb: cargo deb did not report a package file (got: $deb)" >&2
  exit 1
fi
echo "package-deb: built $deb"

# What the package holds, checked before anything is installed.
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/certauth ./usr/bin/certauth-verifier \
  ".$USER_UNIT_DIR/certauth-agent.service" ".$USER_UNIT_DIR/certauth-agent.socket" \
  ".$AUTOSTART" ./usr/share/doc/certauth/README.md ./usr/share/doc/certauth/agent-api.md \
  ./usr/share/doc/certauth/signin-protocol.md ./usr/share/doc/certauth/list-json.md; do
  if ! grep -q " $path\$" <<<"$contents"; then
    echo "package-deb: $deb lacks $path" >&2
    exit 1
  fi
done
echo "package-deb: the package holds both programs, the user units, the autostart entry and the docs"
if dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -qE '(postinst|prerm|postrm)$'; then
  echo "package-deb: the package has maintainer scripts; the user units must not be enabled on install" >&2
  exit 1
fi

# Checks the version line a program prints.
check_version() {
  local program=$1 expected=$2 printed
  printed=$("$program" --version)
  if [ "$printed" != "$expected" ]; then
    echo "package-deb: $program --version printed '$printed', expected '$expected'" >&2
    exit 1
  fi
  echo "package-deb: $program --version: $printed"
}

if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate packaging/certauth.desktop
  echo "package-deb: desktop-file-validate: packaging/certauth.desktop is valid"
else
  echo "package-deb: desktop-file-validate is not installed (desktop-file-utils); not checking the desktop entry"
fi

if [ "$(id -u)" -ne 0 ]; then
  check_version target/release/certauth "certauth $version"
  check_version target/release/certauth-verifier "certauth-verifier $version"
  echo "package-deb: not root, so not installing. As root this script would run:"
  echo "  dpkg -i $deb"
  echo "  /usr/bin/certauth --version; /usr/bin/certauth-verifier --version; dpkg -L certauth"
  echo "  systemd-analyze --user verify ${UNITS[*]/#/$USER_UNIT_DIR/}"
  echo "  dpkg --purge certauth"
  echo "package-deb: built and checked $deb (install skipped)"
  exit 0
fi

# Remove the package again at the end, unless certauth was installed before this script ran.
preinstalled=no
if dpkg-query -W -f='${Status}' certauth 2>/dev/null | grep -q "install ok installed"; then
  preinstalled=yes
fi
scratch=$(mktemp -d)
cleanup() {
  rm -rf "$scratch"
  if [ "$preinstalled" = no ] && dpkg-query -W certauth >/dev/null 2>&1; then
    # --purge, not -r: the autostart entry under /etc is a conffile, which -r would leave behind.
    echo "package-deb: removing the package again (dpkg --purge certauth)"
    dpkg --purge certauth >/dev/null
  fi
}
trap cleanup EXIT

echo "package-deb: installing (dpkg -i $deb)"
dpkg -i "$deb"
if [ "$preinstalled" = yes ]; then
  echo "package-deb: certauth was installed before; it is now this build and stays installed"
fi

check_version /usr/bin/certauth "certauth $version"
check_version /usr/bin/certauth-verifier "certauth-verifier $version"

installed=$(dpkg -L certauth)
for path in "${UNITS[@]/#/$USER_UNIT_DIR/}" "$AUTOSTART"; do
  if ! grep -qx "$path" <<<"$installed"; then
    echo "package-deb: dpkg -L certauth does not list $path" >&2
    exit 1
  fi
done
echo "package-deb: dpkg -L certauth lists ${UNITS[*]} and $(basename "$AUTOSTART")"

# systemd-analyze needs a runtime directory for the user manager it simulates; it reports unknown
# keys and bad values as warnings with exit status 0, so any line about our units fails the check.
echo "package-deb: systemd-analyze --user verify ${UNITS[*]}"
status=0
analysis=$(XDG_RUNTIME_DIR=$scratch systemd-analyze --user verify "${UNITS[@]/#/$USER_UNIT_DIR/}" 2>&1) || status=$?
if [ -n "$analysis" ]; then
  echo "$analysis"
fi
if [ "$status" -ne 0 ] || grep -q certauth <<<"$analysis"; then
  echo "package-deb: systemd-analyze verify found problems in the user units" >&2
  exit 1
fi
echo "package-deb: systemd-analyze verify: no warnings"

if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$AUTOSTART"
  echo "package-deb: desktop-file-validate: $AUTOSTART is valid"
fi

echo "package-deb: $deb installs and runs"
