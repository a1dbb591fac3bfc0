#!/usr/bin/env bash
# Load benchmark: CLIENTS concurrent clients doing full mutual-TLS sign-ins (no resumption) for
# SECONDS against certauth-verifier, with a 100,000-entry CRL loaded for the issuing CA. In the
# same run, nginx with ssl_verify_client on and ssl_crl (same CRLs, same certificates, same server
# certificate) serving a static response. Reports handshakes/s, p50/p99 latency, peak memory.
#
# usage: benches/signin_load.sh [CLIENTS] [SECONDS]    (default 200 and 30; needs nginx:
#        apt-get install nginx; builds in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-200}
seconds=${2:-30}
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is missing (apt-get install nginx)" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release --locked --quiet --bin certauth --bin certauth-verifier --example certauth-load --example certauth-crl-bench
bin=$PWD/target/release
work=$(mktemp -d)
verifier_pid= ; nginx_pid=
cleanup() {
  [ -n "$verifier_pid" ] && kill "$verifier_pid" 2>/dev/null && wait "$verifier_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/certauth" fixture --dir "$work/tenant" >/dev/null
pki=$work/tenant/pki
# A 100,000-entry CRL for the issuing CA replaces the fixture's (a higher CRL number).
"$bin/examples/certauth-crl-bench" issue-crl "$pki/ca/woodgrove-issuing.pem" "$pki/ca/woodgrove-issuing.key" 100 100000 "$pki/crl/woodgrove-issuing-ca-01.crl"
"$bin/examples/certauth-crl-bench" issue-client "$pki/ca/woodgrove-issuing.pem" "$pki/ca/woodgrove-issuing.key" alice@woodgrove.com "$work/client"
cat "$work/client/client.pem" "$pki/ca/woodgrove-issuing.pem" > "$work/client/chain.pem"

peak_mb() { # sum of VmHWM over the given PIDs
  local total=0
  for pid in "$@"; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $((total / 1024))
}

# certauth-verifier; the delta CRL is dropped so both servers check the same CRLs.
"$bin/certauth-verifier" serve --state-dir "$work/verifier" --tenant "$work/tenant" > "$work/verifier.out" 2>"$work/verifier.err" &
verifier_pid=$!
for _ in $(seq 200); do grep -q '^Sign in' "$work/verifier.out" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^  certauth endpoint  //p' "$work/verifier.out")
"$bin/examples/certauth-load" "$url" "$work/verifier/server-ca.pem" "$work/client/chain.pem" "$work/client/client.key" 2 2 signin > "$work/warm.out"
grep -q '^[1-9][0-9]* ok, 0 failed' "$work/warm.out" || { echo "warm-up sign-ins failed:" >&2; cat "$work/warm.out" >&2; exit 1; }
verifier_result=$("$bin/examples/certauth-load" "$url" "$work/verifier/server-ca.pem" "$work/client/chain.pem" "$work/client/client.key" "$clients" "$seconds" signin)
verifier_mb=$(peak_mb "$verifier_pid")
kill "$verifier_pid"; wait "$verifier_pid" 2>/dev/null || true; verifier_pid=

# nginx with the same server certificate, client CAs and CRLs.
mkdir -p "$work/nginx/logs"
cat "$pki/ca/woodgrove-root.pem" "$pki/ca/woodgrove-issuing.pem" > "$work/nginx/client-cas.pem"
for crl in woodgrove-issuing-ca-01 woodgrove-root-ca; do
  openssl crl -inform DER -in "$pki/crl/$crl.crl" -outform PEM
done > "$work/nginx/crls.pem"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $work/verifier/server.pem;
    ssl_certificate_key $work/verifier/server.key;
    ssl_client_certificate $work/nginx/client-cas.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_crl $work/nginx/crls.pem;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / { return 200 "ok\n"; }
  }
}
CONF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
sleep 1
"$bin/examples/certauth-load" "https://127.0.0.1:$port/" "$work/verifier/server-ca.pem" "$work/client/chain.pem" "$work/client/client.key" 2 2 get > "$work/warm.out"
grep -q '^[1-9][0-9]* ok, 0 failed' "$work/warm.out" || { echo "nginx warm-up failed:" >&2; cat "$work/warm.out" "$work/nginx/logs/error.log" >&2; exit 1; }
nginx_result=$("$bin/examples/certauth-load" "https://127.0.0.1:$port/" "$work/verifier/server-ca.pem" "$work/client/chain.pem" "$work/client/client.key" "$clients" "$seconds" get)
nginx_mb=$(peak_mb "$nginx_pid" $(pgrep -P "$nginx_pid"))

echo "$clients clients, $seconds s, full mutual-TLS handshakes, 100,000-entry CRL for the issuing CA"
echo "certauth-verifier (POST /certauth/signin, full policy decision, signed JWT): $verifier_result; peak ${verifier_mb} MB"
echo "nginx (ssl_verify_client on, ssl_crl, static 200):                          $nginx_result; peak ${nginx_mb} MB"
v=$(echo "$verifier_result" | sed -n 's/.*: \([0-9]*\) handshakes\/s.*/\1/p')
n=$(echo "$nginx_result" | sed -n 's/.*: \([0-9]*\) handshakes\/s.*/\1/p')
awk -v v="$v" -v n="$n" 'BEGIN { printf "ratio certauth-verifier / nginx throughput: %.2fx\n", v / n }'
