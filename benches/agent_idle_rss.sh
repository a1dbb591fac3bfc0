#!/usr/bin/env bash
# Benchmark: the memory of `certauth agent` idle with two SoftHSM tokens (the embedded Woodgrove
# tenant: `Woodgrove Alice` and `Woodgrove Bob`), after it has answered one `list`. The target is
# under 20 MB RSS. Reports VmRSS and the peak (VmHWM) from /proc, for the agent with no session
# bus (sign-ins cached in memory) and, where dbus-run-session and gnome-keyring-daemon are
# installed, for the agent caching in a real Secret Service, as on a desktop.
#
# usage: benches/agent_idle_rss.sh [IDLE_SECONDS]   (default 5; builds certauth in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-5}

cargo build --release --locked --quiet --bin certauth
certauth=$PWD/target/release/certauth
module=$(for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -f "$m" ] && { echo "$m"; break; }; done)
[ -n "$module" ] || { echo "SoftHSM is not installed (apt-get install softhsm2)" >&2; exit 1; }

work=$(mktemp -d)
agent_pid=
launcher_pid=
stop_agent() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  [ -n "$launcher_pid" ] && wait "$launcher_pid" 2>/dev/null || true
  agent_pid= launcher_pid=
}
cleanup() {
  stop_agent
  rm -rf "$work"
}
trap cleanup EXIT

"$certauth" fixture --dir "$work/tenant" >/dev/null
conf=$(find "$work/tenant" -name softhsm2.conf | head -1)
export SOFTHSM2_CONF=$conf XDG_CONFIG_HOME=$work/config

# One request through the socket (perl from perl-base); prints what `pick` selects of the result.
ask() {
  perl -MIO::Socket::UNIX -MJSON::PP -e '
    my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!\n";
    print $s qq({"method":"$ARGV[1]"}\n);
    my $result = decode_json(scalar <$s>)->{result};
    print $ARGV[2] eq "tokens" ? scalar @{ $result->{tokens} }
        : $ARGV[2] eq "pid" ? $result->{pid} : $result->{sessions}{store};' "$@"
}

# measure LABEL [LAUNCHER...]: starts the agent (through LAUNCHER), lists once, idles, reports.
measure() {
  local label=$1
  shift
  local socket=$work/$label/agent.sock
  "$@" "$certauth" agent --no-p11-kit --module "$module" --socket "$socket" >"$work/$label.out" 2>&1 &
  launcher_pid=$!
  for _ in $(seq 1 200); do
    grep -q "listening on" "$work/$label.out" 2>/dev/null && break
    sleep 0.05
  done
  grep -q "listening on" "$work/$label.out" || { cat "$work/$label.out" >&2; exit 1; }
  agent_pid=$(ask "$socket" status pid)
  local store tokens rss hwm threads
  store=$(ask "$socket" status store)
  tokens=$(ask "$socket" list tokens)

  sleep "$idle"
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent_pid/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$agent_pid/status")
  stop_agent

  printf 'certauth agent (%s; sign-ins cached in %s), idle %ss with %s tokens after one list:\n' \
    "$label" "$store" "$idle" "$tokens"
  awk -v rss="$rss" -v hwm="$hwm" -v threads="$threads" \
    'BEGIN { printf "  RSS  %6.1f MB\n  peak %6.1f MB\n  threads %s\n", rss / 1024, hwm / 1024, threads }'
  if [ "$rss" -lt $((20 * 1024)) ]; then
    echo "  under the 20 MB target"
  else
    echo "  OVER the 20 MB target"
  fi
}

measure no-session-bus env -u DBUS_SESSION_BUS_ADDRESS

if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  mkdir -p "$work/keyring-home" "$work/keyring-run"
  chmod 700 "$work/keyring-run"
  measure secret-service env HOME="$work/keyring-home" XDG_RUNTIME_DIR="$work/keyring-run" \
    dbus-run-session -- sh -c \
    'printf bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"' sh
else
  echo "(no dbus-run-session or gnome-keyring-daemon: the Secret Service case was not measured)"
fi
