#!/usr/bin/env bash
# Benchmark: list 8 SoftHSM tokens holding 10 certificates each with `certauth list`, against
# OpenSC's `pkcs11-tool --list-objects --type cert` run once per token, in the same run.
#
# usage: benches/list_tokens.sh [ROUNDS]      (default 20; builds certauth in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
tokens=8
certs_per_token=10

cargo build --release --locked --quiet --bin certauth
certauth=target/release/certauth
module=$(for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -f "$m" ] && { echo "$m"; break; }; done)
[ -n "$module" ] || { echo "SoftHSM is not installed (apt-get install softhsm2)" >&2; exit 1; }
command -v pkcs11-tool >/dev/null || { echo "pkcs11-tool is missing (apt-get install opensc)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A spec with 8 tokens x 10 ECDSA certificates from one CA.
spec=$work/bench.toml
{
  cat <<'TOML'
schema = 1
[tenant]
name = "Bench"
domain = "bench.example"
[[authorities]]
id = "bench-ca"
subject = ["O=Bench", "CN=Bench CA"]
key = "p256"
serial = "01"
trusted = true
not_before_days = -10
not_after_days = 365
crl = { url = "http://crl.bench.example/bench.crl", number = 1, next_update_days = 7 }
TOML
  for t in $(seq 1 $tokens); do
    printf '[[tokens]]\nlabel = "bench-%02d"\npin = "123456"\nso_pin = "12345678"\n' "$t"
  done
  for t in $(seq 1 $tokens); do
    for c in $(seq 1 $certs_per_token); do
      printf '[[certificates]]\nname = "t%02d-c%02d"\ntoken = "bench-%02d"\nissuer = "bench-ca"\nkey = "p256"\n' "$t" "$c" "$t"
      printf 'serial = "%02x%02x"\nsubject = ["O=Bench", "CN=User %d.%d"]\nupn = "user%d.%d@bench.example"\n' "$t" "$c" "$t" "$c" "$t" "$c"
      printf 'eku = ["clientAuth"]\nkey_usage = ["digitalSignature"]\nnot_before_days = -1\nnot_after_days = 365\n'
    done
  done
} > "$spec"

"$certauth" fixture --dir "$work/fixture" --spec "$spec" --softhsm-module "$module" >/dev/null
export SOFTHSM2_CONF=$work/fixture/softhsm2.conf
export CERTAUTH_CONFIG=$work/empty-config.toml; : > "$CERTAUTH_CONFIG"

# Sanity: both see all 80 certificates.
listed=$("$certauth" list --json --all --no-p11-kit --module "$module" | grep -c '"uri": "pkcs11:')
seen=0
for t in $(seq 1 $tokens); do
  n=$(pkcs11-tool --module "$module" --token-label "$(printf 'bench-%02d' "$t")" --list-objects --type cert 2>/dev/null | grep -c '^Certificate Object')
  seen=$((seen + n))
done
[ "$listed" -eq $((tokens * certs_per_token)) ] && [ "$seen" -eq $((tokens * certs_per_token)) ] || {
  echo "expected $((tokens * certs_per_token)) certificates; certauth saw $listed, pkcs11-tool $seen" >&2; exit 1; }

now_ns() { date +%s%N; }
time_certauth() {
  local start end; start=$(now_ns)
  for _ in $(seq 1 "$rounds"); do "$certauth" list --json --all --no-p11-kit --module "$module" >/dev/null; done
  end=$(now_ns); echo $(( (end - start) / rounds / 1000 ))
}
time_pkcs11_tool() {
  local start end; start=$(now_ns)
  for _ in $(seq 1 "$rounds"); do
    for t in $(seq 1 $tokens); do
      pkcs11-tool --module "$module" --token-label "$(printf 'bench-%02d' "$t")" --list-objects --type cert >/dev/null 2>&1
    done
  done
  end=$(now_ns); echo $(( (end - start) / rounds / 1000 ))
}

certauth_us=$(time_certauth)
tool_us=$(time_pkcs11_tool)
echo "tokens: $tokens, certificates per token: $certs_per_token, rounds: $rounds"
echo "certauth list --json --all (one process, all tokens, parsed + eligibility): $((certauth_us / 1000)).$(printf '%03d' $((certauth_us % 1000))) ms"
echo "pkcs11-tool --list-objects --type cert, once per token ($tokens processes):    $((tool_us / 1000)).$(printf '%03d' $((tool_us % 1000))) ms"
awk -v a="$certauth_us" -v b="$tool_us" 'BEGIN { printf "ratio pkcs11-tool / certauth: %.2fx\n", b / a }'
