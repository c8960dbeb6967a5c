#!/usr/bin/env bash
# Benchmarks (never part of `make test`). Results go to BENCHMARKS.md by hand, with the
# command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

# NP_BENCH_ONLY=idle: only netplugin's idle row (a few minutes), nothing else.
# NP_BENCH_ONLY=policy: only the policy rows (issue #12, a few minutes); POLICY_BENCH_ONLY=
# enforce|load|packet narrows them to one part.
case "${NP_BENCH_ONLY:-}" in
  ""|idle|policy) ;;
  *) echo "bench: NP_BENCH_ONLY=${NP_BENCH_ONLY}: idle or policy" >&2; exit 1 ;;
esac
if [ -z "${NP_BENCH_ONLY:-}" ]; then
  echo "== lab: deploy -> all BGP sessions Established -> destroy (contiv-lab, real FRR/BIRD/GoBGP)"
  cargo run -q --release -p containerlab --example lab_bench -- "${LAB_BENCH_ROUNDS:-5}"

  echo "== netmaster: REST writes/reads on redb and etcd beside raw etcd puts; feed fan-out"
  ulimit -n 16384 2>/dev/null || ulimit -n 8192 2>/dev/null || true
  cargo run -q --release -p netmaster --example api_bench -- "${API_BENCH_SECONDS:-5}" "${API_BENCH_SUBSCRIBERS:-1000}"

  echo "== netmaster IPAM allocator"
  cargo bench -q -p netmaster --bench ipam_alloc

  echo "== bgp: UPDATE decode/encode, RIB insert + best path, bytes per route"
  cargo bench -q -p bgp --bench codec
  cargo bench -q -p bgp --bench rib
  cargo bench -q -p bgp --bench rib_memory
fi

# cluster::bin finds netplugin, netctl and contiv-cni next to the example's directory.
# NP_BENCH_ONLY=idle runs only the idle row. The example exits with status 2 (after
# printing every row) when netplugin misses an idle goal; the remaining benchmarks still
# run and this script fails at the end.
cargo build -q --release -p netplugin -p netctl
np_status=0
if [ "${NP_BENCH_ONLY:-}" != policy ]; then
  echo "== netplugin: idle CPU/RSS (vs BIRD), endpoint -> ToR FIB (vs BIRD kernel learn), CNI ADD latency, bulk prefixes -> kernel (vs FRR zebra, BIRD)"
  cargo build -q --release -p contiv-tests --example netplugin_bench
  "${CARGO_TARGET_DIR:-target}/release/examples/netplugin_bench" \
    "${NP_BENCH_ENDPOINTS:-1000}" "${NP_BENCH_SEQ:-200}" "${NP_BENCH_PAR:-200}" "${NP_BENCH_PREFIXES:-100000}" \
    || np_status=$?
fi
if [ "${NP_BENCH_ONLY:-}" = idle ]; then
  exit "$np_status"
fi

echo "== netplugin policy (issue #12): rule -> every host's kernel; 1000 groups x 10 rules compile + load (vs iptables-restore); per-packet cost (vs no policy, vs iptables)"
# POLICY_BENCH_ONLY=enforce|load|packet runs one part; POLICY_BENCH_SECS (2) and
# POLICY_BENCH_REPEATS (6) size the per-packet runs.
cargo build -q --release -p contiv-tests --example policy_bench
pol_status=0
"${CARGO_TARGET_DIR:-target}/release/examples/policy_bench" \
  "${POLICY_BENCH_CHANGES:-200}" "${POLICY_BENCH_GROUPS:-1000}" "${POLICY_BENCH_RULES:-10}" "${POLICY_BENCH_ENDPOINTS:-1000}" \
  || pol_status=$?
if [ "${NP_BENCH_ONLY:-}" = policy ]; then
  exit "$pol_status"
fi

echo "== bgperf: N senders x M prefixes -> target (contiv-bgpd, BIRD, FRR, GoBGP) -> counting monitor"
cargo build -q --release -p bgp-speaker --bin contiv-bgpd --example bgperf
"${CARGO_TARGET_DIR:-target}/release/examples/bgperf" \
  --senders "${BGPERF_SENDERS:-10}" --prefixes "${BGPERF_PREFIXES:-100000}" --timeout "${BGPERF_TIMEOUT:-600}"

if [ "$pol_status" -ne 0 ]; then
  echo "bench: policy_bench failed (status $pol_status)" >&2
  exit "$pol_status"
fi
if [ "$np_status" -ne 0 ]; then
  echo "bench: netplugin_bench failed (status $np_status): see its WARN lines above" >&2
  exit "$np_status"
fi
