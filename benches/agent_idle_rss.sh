#!/usr/bin/env bash
# Benchmark: the memory of `certauth agent` idle with two SoftHSM tokens (the embedded Woodgrove
# tenant: `Woodgrove Alice` and `Woodgrove Bob`), after it has answered one `list`. The target is
# under 20 MB RSS. Reports VmRSS and the peak (VmHWM) from /proc.
#
# usage: benches/agent_idle_rss.sh [IDLE_SECONDS]   (default 5; builds certauth in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-5}

cargo build --release --locked --quiet --bin certauth
certauth=target/release/certauth
module=$(for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -f "$m" ] && { echo "$m"; break; }; done)
[ -n "$module" ] || { echo "SoftHSM is not installed (apt-get install softhsm2)" >&2; exit 1; }

work=$(mktemp -d)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$certauth" fixture --dir "$work/tenant" >/dev/null
conf=$(find "$work/tenant" -name softhsm2.conf | head -1)
export SOFTHSM2_CONF=$conf XDG_CONFIG_HOME=$work/config

socket=$work/run/agent.sock
"$certauth" agent --no-p11-kit --module "$module" --socket "$socket" >"$work/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$work/agent.out" 2>/dev/null && break
  sleep 0.05
done
grep -q "listening on" "$work/agent.out" || { cat "$work/agent.out" >&2; exit 1; }

# One `list` through the socket (perl from perl-base), so the tokens have been scanned.
tokens=$(perl -MIO::Socket::UNIX -MJSON::PP -e '
  my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!\n";
  print $s qq({"method":"list"}\n);
  my $answer = decode_json(scalar <$s>);
  print scalar @{ $answer->{result}{tokens} };' "$socket")

sleep "$idle"
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent_pid/status")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$agent_pid/status")

printf 'certauth agent, idle %ss with %s tokens after one list:\n' "$idle" "$tokens"
awk -v rss="$rss" -v hwm="$hwm" -v threads="$threads" \
  'BEGIN { printf "  RSS  %6.1f MB\n  peak %6.1f MB\n  threads %s\n", rss / 1024, hwm / 1024, threads }'
if [ "$rss" -lt $((20 * 1024)) ]; then
  echo "  under the 20 MB target"
else
  echo "  OVER the 20 MB target"
fi
