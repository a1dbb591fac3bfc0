#!/usr/bin/env bash
# Benchmark: 50 sequential mutual-TLS requests with a SoftHSM RSA-2048 key, one process each
# (module load included), with `certauth request` and, in the same run, with curl using OpenSSL's
# PKCS#11 engine (Debian libengine-pkcs11-openssl) and a pkcs11: URI, against the same server.
#
# usage: benches/signin_requests.sh [REQUESTS]     (default 50; builds in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-50}

for tool in curl openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install $tool)" >&2; exit 1; }
done
engine=$(ls /usr/lib/*/engines-3/pkcs11.so 2>/dev/null | head -1)
[ -n "$engine" ] || { echo "OpenSSL's PKCS#11 engine is missing (apt-get install libengine-pkcs11-openssl)" >&2; exit 1; }
module=$(for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -f "$m" ] && { echo "$m"; break; }; done)
[ -n "$module" ] || { echo "SoftHSM is not installed (apt-get install softhsm2)" >&2; exit 1; }

cargo build --release --locked --quiet --bin certauth --example certauth-mtls-echo
certauth=$PWD/target/release/certauth
echo_server=$PWD/target/release/examples/certauth-mtls-echo

work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$certauth" fixture --dir "$work/fixture" --softhsm-module "$module" >/dev/null
export SOFTHSM2_CONF=$work/fixture/softhsm2.conf
export CERTAUTH_CONFIG=$work/empty-config.toml; : > "$CERTAUTH_CONFIG"
export XDG_CONFIG_HOME=$work/config
pki=$work/fixture/pki

# The server's own certificate, from a throwaway CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=bench server CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null
cat "$pki/ca/woodgrove-issuing.pem" "$pki/ca/woodgrove-root.pem" > "$work/chain.pem"

# The server trusts the root and the issuing CA, so a client that sends only its leaf (curl) works.
"$echo_server" --cert "$work/server.pem" --key "$work/server.key" \
  --client-ca "$pki/ca/woodgrove-root.pem" --client-ca "$pki/ca/woodgrove-issuing.pem" > "$work/server.out" &
server_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/server.out" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/server.out")

name=alice-rsa2048-mfa
thumbprint=$(openssl x509 -in "$pki/users/$name.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
export TOKEN_PIN=123456

cat > "$work/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = $module
init = 0
CNF
uri="pkcs11:token=Woodgrove%20Alice;object=$name"

run_certauth() {
  "$certauth" request "$url" --no-p11-kit --module "$module" --cert "$thumbprint" --pin env:TOKEN_PIN \
    --ca-file "$work/ca.pem" --chain "$work/chain.pem"
}
run_curl() {
  OPENSSL_CONF=$work/openssl.cnf curl -sS --fail --engine pkcs11 --cacert "$work/ca.pem" \
    --cert-type ENG --cert "$uri;type=cert" --key-type ENG --key "$uri;type=private;pin-value=$TOKEN_PIN" "$url"
}

# Both must present the same certificate.
for client in run_certauth run_curl; do
  seen=$($client | sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p')
  [ "$seen" = "$thumbprint" ] || { echo "$client presented '$seen', not $thumbprint" >&2; exit 1; }
done

now_ns() { date +%s%N; }
time_client() {
  local start end; start=$(now_ns)
  for _ in $(seq 1 "$requests"); do "$1" >/dev/null; done
  end=$(now_ns); echo $(( (end - start) / requests / 1000 ))
}
certauth_us=$(time_client run_certauth)
curl_us=$(time_client run_curl)
ms() { echo "$(( $1 / 1000 )).$(printf '%03d' $(( $1 % 1000 )))"; }
echo "requests: $requests sequential, one process each, SoftHSM RSA-2048 key, mutual TLS to $url"
echo "certauth request:            $(ms "$certauth_us") ms per request"
echo "curl + OpenSSL pkcs11 engine: $(ms "$curl_us") ms per request"
awk -v a="$certauth_us" -v b="$curl_us" 'BEGIN { printf "ratio curl / certauth: %.2fx\n", b / a }'
