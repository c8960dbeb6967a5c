#!/usr/bin/env bash
# Benchmarks (never part of `make test`). Results go to BENCHMARKS.md by hand, with the
# command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

echo "== lab: deploy -> all BGP sessions Established -> destroy (contiv-lab, real FRR/BIRD/GoBGP)"
cargo run -q --release -p containerlab --example lab_bench -- "${LAB_BENCH_ROUNDS:-5}"
