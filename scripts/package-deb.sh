#!/usr/bin/env bash
# CI: build the release binaries, generate the man pages and shell completions from them, build the
# Debian package with cargo-deb, check what is in it, install it with dpkg, run both programs from
# /usr/bin, check the man pages and completions are installed, check the systemd user units with
# systemd-analyze (also with the drop-in example packaging/systemd/tokens.conf applied, and the
# service's own command line socket-activated with the drop-in's environment, answering over its
# socket) and the autostart entry with desktop-file-validate, then purge the package again (unless
# certauth was installed before).
# As root it installs; otherwise it builds and checks the .deb and says what it skipped.
# It writes only under target/ (and a temporary directory it removes).
set -euo pipefail
cd "$(dirname "$0")/.."

# The cargo-deb release known to build with our toolchain (rustc 1.95; cargo-deb 3.8 needs 1.85).
CARGO_DEB_VERSION=3.8.0
UNITS=(certauth-agent.service certauth-agent.socket)
USER_UNIT_DIR=/usr/lib/systemd/user
AUTOSTART=/etc/xdg/autostart/certauth.desktop
MANUALS=(/usr/share/man/man1/certauth.1.gz /usr/share/man/man1/certauth-verifier.1.gz)
COMPLETIONS=(
  /usr/share/bash-completion/completions/certauth
  /usr/share/bash-completion/completions/certauth-verifier
  /usr/share/zsh/vendor-completions/_certauth
  /usr/share/zsh/vendor-completions/_certauth-verifier
  /usr/share/fish/vendor_completions.d/certauth.fish
  /usr/share/fish/vendor_completions.d/certauth-verifier.fish
)
# Where the README tells users to put the drop-in example, below their config directory.
DROP_IN_PATH=certauth-agent.service.d/tokens.conf

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

echo "package-deb: building the release binaries (cargo build --release --locked)"
cargo build --release --locked --bins

# The man pages and completions come from the programs' own clap definitions (the hidden
# `generate` subcommand), so they say what --help says. Cargo.toml's assets name these files.
generated=target/generated
rm -rf "$generated"
mkdir -p "$generated/man" "$generated/completions"
for program in certauth certauth-verifier; do
  "target/release/$program" generate man | gzip -9n >"$generated/man/$program.1.gz"
  "target/release/$program" generate complete-bash >"$generated/completions/$program.bash"
  "target/release/$program" generate complete-zsh >"$generated/completions/_$program"
  "target/release/$program" generate complete-fish >"$generated/completions/$program.fish"
done
echo "package-deb: generated the man pages and bash, zsh and fish completions in $generated"

echo "package-deb: building the .deb (cargo deb --locked --no-build)"
# cargo-deb prints the path of the package it made as the last line on stdout.
deb=$(cargo deb --locked --no-build | tail -n1)
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
  ./usr/share/doc/certauth/signin-protocol.md ./usr/share/doc/certauth/list-json.md \
  ./usr/share/doc/certauth/config.md "./usr/share/doc/certauth/examples/$DROP_IN_PATH" \
  "${MANUALS[@]/#/.}" "${COMPLETIONS[@]/#/.}"; do
  if ! grep -q " $path\$" <<<"$contents"; then
    echo "package-deb: $deb lacks $path" >&2
    exit 1
  fi
done
echo "package-deb: the package holds both programs, the user units, the autostart entry, the docs, the man pages and the completions"
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
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ]; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
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

# The man pages are where man finds them, and say what each subcommand is.
for program in certauth certauth-verifier; do
  page=$(man -w "$program")
  if [ "$page" != "/usr/share/man/man1/$program.1.gz" ]; then
    echo "package-deb: man -w $program found '$page', not the packaged page" >&2
    exit 1
  fi
  # Every subcommand --help lists has its section (`certauth-verifier tenant` has its own).
  text=$(zcat "$page")
  for sub in $("/usr/bin/$program" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p'); do
    if [ "$sub" != help ] && ! grep -q "^\.SS \"$program $sub\"" <<<"$text"; then
      echo "package-deb: $page has no section for \`$program $sub\`" >&2
      exit 1
    fi
  done
  echo "package-deb: man -w $program: $page, a section for each subcommand"
done
# Each completion file is installed; bash's loads without error and completes the program, as
# bash-completion's loader would load it (through the loader itself where it is installed).
for path in "${COMPLETIONS[@]}"; do
  if [ ! -s "$path" ]; then
    echo "package-deb: $path is not installed" >&2
    exit 1
  fi
done
for program in certauth certauth-verifier; do
  if [ -r /usr/share/bash-completion/bash_completion ]; then
    # The loader returns 124 ("try again") when it has loaded a completion.
    load=". /usr/share/bash-completion/bash_completion; _completion_loader $program || true"
  else
    load=". /usr/share/bash-completion/completions/$program"
  fi
  # Loaded without a word on stderr, and then bash completes the program with it.
  status=0
  errors=$(bash -c "set -e; $load; complete -p $program >/dev/null" 2>&1) || status=$?
  if [ "$status" -ne 0 ] || [ -n "$errors" ]; then
    echo "package-deb: the bash completion for $program does not load: $errors" >&2
    exit 1
  fi
done
echo "package-deb: bash, zsh and fish completions installed; bash's load and complete both programs"

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

# The drop-in example (packaging/systemd/tokens.conf), placed where the README tells a user to put
# it, below a scratch home's config directory. systemd-analyze reads drop-ins for a unit named
# (not one given by path), from the user search path that XDG_CONFIG_HOME leads.
home=$scratch/home
dropins=$home/.config/systemd/user/certauth-agent.service.d
mkdir -p "$dropins" "$scratch/run"
cp packaging/systemd/tokens.conf "$dropins/tokens.conf"
verify_service() {
  HOME=$home XDG_CONFIG_HOME=$home/.config XDG_RUNTIME_DIR=$scratch/run \
    systemd-analyze --user verify certauth-agent.service 2>&1
}
# First prove the drop-ins are read: a mistake in one is reported.
printf '[Service]\nNoSuchSetting=1\n' >"$dropins/zz-mistake.conf"
mistake=$(verify_service || true)
if ! grep -q "zz-mistake.conf.*NoSuchSetting" <<<"$mistake"; then
  echo "package-deb: systemd-analyze verify did not read the drop-in directory $dropins" >&2
  exit 1
fi
rm "$dropins/zz-mistake.conf"
echo "package-deb: systemd-analyze --user verify certauth-agent.service with the drop-in $DROP_IN_PATH"
status=0
analysis=$(verify_service) || status=$?
if [ -n "$analysis" ]; then
  echo "$analysis"
fi
if [ "$status" -ne 0 ] || grep -q "certauth\|tokens.conf" <<<"$analysis"; then
  echo "package-deb: systemd-analyze verify found problems with the drop-in applied" >&2
  exit 1
fi
echo "package-deb: systemd-analyze verify with the drop-in: no warnings"

# The service's own command line (its ExecStart=), socket-activated as the socket unit would start
# it, with the drop-in's Environment= (%h is the home directory) and what a user manager passes
# (HOME, XDG_RUNTIME_DIR): the agent must find the SoftHSM tokens that SOFTHSM2_CONF names, which
# it reaches through the p11-kit registry like any module. systemd-socket-activate passes on only
# the variables named with -E, as systemd does. (It applies no sandbox: that needs a user manager,
# which this machine does not run.)
read -r -a exec_start <<<"$(sed -n 's/^ExecStart=//p' "$USER_UNIT_DIR/certauth-agent.service")"
environment=(-E "HOME=$home" -E "XDG_RUNTIME_DIR=$scratch/run")
while IFS= read -r assignment; do
  environment+=(-E "${assignment//%h/$home}")
done < <(sed -n 's/^Environment=//p' "$dropins/tokens.conf")
if ! grep -q "SOFTHSM2_CONF=$home/tokens/softhsm2.conf" <<<"${environment[*]}"; then
  echo "package-deb: the drop-in example no longer sets SOFTHSM2_CONF=%h/tokens/softhsm2.conf" >&2
  exit 1
fi
/usr/bin/certauth fixture --dir "$home/tokens" >/dev/null
echo "package-deb: provisioned the Woodgrove tokens in the drop-in's %h/tokens"
socket=$scratch/run/certauth/agent.sock
mkdir -m 700 "$scratch/run/certauth"
env -u SOFTHSM2_CONF systemd-socket-activate "${environment[@]}" -l "$socket" -- "${exec_start[@]}" \
  >"$scratch/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  [ -S "$socket" ] && break
  sleep 0.1
done
if [ ! -S "$socket" ]; then
  cat "$scratch/agent.log" >&2
  echo "package-deb: systemd-socket-activate made no socket at $socket" >&2
  exit 1
fi
chmod 600 "$socket"
# The client has no SOFTHSM2_CONF, so the tokens can only come from the agent's scan.
listing=$(env -u SOFTHSM2_CONF /usr/bin/certauth list --json --agent-socket "$socket") || {
  cat "$scratch/agent.log" >&2
  echo "package-deb: no answer from \`${exec_start[*]}\` over its socket" >&2
  exit 1
}
if ! grep -q "Woodgrove" <<<"$listing"; then
  cat "$scratch/agent.log" >&2
  echo "package-deb: the socket-activated agent does not see the tokens the drop-in points at:" >&2
  echo "$listing" >&2
  exit 1
fi
kill -TERM "$agent_pid"
wait "$agent_pid"
agent_pid=
echo "package-deb: \`${exec_start[*]}\`, socket-activated with the drop-in's environment, lists the tokens over its socket"

if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$AUTOSTART"
  echo "package-deb: desktop-file-validate: $AUTOSTART is valid"
fi

echo "package-deb: $deb installs and runs"
