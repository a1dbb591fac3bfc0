#!/usr/bin/env bash
# Soak test: SECONDS (default 600) of mixed load against one certauth-verifier release process,
# driven by examples/certauth-soak.rs:
#  - 8 clients doing full mutual-TLS sign-ins (software certificates from the fixture's issuing CA):
#    a valid user, a wrong username, a revoked certificate, a user that does not exist;
#  - 3 admin writers creating, patching and deleting users, one patching the method policy, one
#    reader, with a ledger of every acknowledged (201/204) write checked at the end;
#  - the issuing CA's CRL served by the driver on loopback, flipping between good, slow (trickled
#    past the verifier's 2 s --crl-fetch-timeout), garbage and HTTP 500;
#  - a restart half-way: SIGTERM, wait, start again on the same state directory.
# Prints sign-ins ok / expected failures / unexpected errors, admin writes acknowledged / lost,
# VmRSS after warm-up and at the end, and requests/s. Exits non-zero when a write was lost, an
# error was unexpected, or memory grew by 10 MB or more after warm-up.
#
# usage: benches/soak.sh [SECONDS]    (builds in release mode first; keeps nothing behind, except
#        the verifier's logs in $SOAK_KEEP_LOGS when set and the run fails)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
case $seconds in '' | *[!0-9]*) echo "usage: benches/soak.sh [SECONDS]" >&2; exit 2 ;; esac
[ "$seconds" -ge 30 ] || { echo "benches/soak.sh: run at least 30 seconds" >&2; exit 2; }
cargo build --release --locked --quiet --bin certauth --bin certauth-verifier --example certauth-soak
bin=$PWD/target/release
work=$(mktemp -d)
driver_pid=
cleanup() {
  local status=$?
  set +e  # a failing kill or wait here must not skip the rest
  if [ -n "$driver_pid" ]; then
    kill "$driver_pid" 2>/dev/null
    wait "$driver_pid" 2>/dev/null
  fi
  # The verifier the driver started, if the driver died before stopping it: SIGTERM, then SIGKILL.
  if [ -s "$work/verifier.pid" ]; then
    pid=$(cat "$work/verifier.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    fi
  fi
  if [ "$status" -ne 0 ] && [ -n "${SOAK_KEEP_LOGS:-}" ]; then
    mkdir -p "$SOAK_KEEP_LOGS" && cp "$work"/verifier-*.log "$SOAK_KEEP_LOGS"/
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$bin/certauth" fixture --dir "$work/tenant" >/dev/null
"$bin/examples/certauth-soak" "$bin/certauth-verifier" "$work/tenant" \
  softhsm-fixtures/policy-step5.json "$work" "$seconds" &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=
exit "$status"
