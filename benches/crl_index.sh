#!/usr/bin/env bash
# Benchmark: a ~20 MB CRL (500,000 entries). In one run:
#  1. ingest (parse + verify signature + index) by certauth vs `openssl crl -verify`, whole process
#     each, time and peak memory;
#  2. per-lookup cost in certauth's index vs rustls-webpki's own CRL lookups, and certauth's on a
#     1,000-entry CRL, to show the cost does not grow with the CRL.
#
# usage: benches/crl_index.sh [ENTRIES]     (default 500000; builds in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
entries=${1:-500000}
command -v openssl >/dev/null || { echo "openssl is missing (apt-get install openssl)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing; it measures peak memory" >&2; exit 1; }
cargo build --release --locked --quiet --example certauth-crl-bench
bench=$PWD/target/release/examples/certauth-crl-bench
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

"$bench" generate "$work/big" "$entries"
"$bench" generate "$work/small" 1000 >/dev/null

# Runs a command ROUNDS times; prints the mean wall time (ms) and the peak RSS (MB) of one run.
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
rounds, cmd = int(sys.argv[1]), sys.argv[2:]
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm the page cache
start = time.perf_counter()
for _ in range(rounds):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elapsed = (time.perf_counter() - start) / rounds * 1000
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{elapsed:.0f} {peak:.0f}")
PY
}

read -r ours_ms ours_mb < <(measure 5 "$bench" ingest "$work/big")
read -r ossl_ms ossl_mb < <(measure 5 openssl crl -in "$work/big/big.crl" -inform DER -noout -verify -CAfile "$work/big/ca.pem")
echo
echo "ingest of $(stat -c %s "$work/big/big.crl") bytes, $entries entries (whole process, mean of 5):"
echo "  certauth (parse + verify + index): ${ours_ms} ms, peak ${ours_mb} MB"
echo "  openssl crl -verify:               ${ossl_ms} ms, peak ${ossl_mb} MB"
awk -v a="$ours_ms" -v b="$ossl_ms" 'BEGIN { printf "  ratio openssl / certauth: %.2fx\n", b / a }'
echo
echo "lookups on the $entries-entry CRL:"
"$bench" lookups "$work/big" | sed 's/^/  /'
echo "lookups on a 1,000-entry CRL:"
"$bench" lookups "$work/small" | grep certauth | sed 's/^/  /'
