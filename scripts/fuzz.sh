#!/usr/bin/env bash
# Reproduce the fuzz runs recorded in bgp/fuzz/README.md.
#
#   scripts/fuzz.sh harness     stable mutation harness, every target
#   scripts/fuzz.sh libfuzzer   cargo fuzz (libFuzzer + ASan) on the stable toolchain
#                               through RUSTC_BOOTSTRAP=1, every target
#   scripts/fuzz.sh all         both (the default)
#   scripts/fuzz.sh repro <target> <file>...   replay saved inputs with the harness
#
# Environment:
#   ITERATIONS          harness executions per target (default 20000000)
#   SEED                harness and libFuzzer RNG seed (default 1)
#   SECONDS_PER_TARGET  libFuzzer run time per target (default 300)
#   CARGO_TARGET_DIR    build directory (default bgp/fuzz/target)
#
# The fuzz crate is outside the main workspace, so this builds only bgp and the
# fuzz crate. Findings go to bgp/fuzz/artifacts/<target>/; the exit status is
# non-zero if any target panicked.
set -euo pipefail

cd "$(dirname "$0")/../bgp/fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ITERATIONS="${ITERATIONS:-20000000}"
SEED="${SEED:-1}"
SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-300}"
TARGETS=(framing open update notification bfd)

harness() {
    cargo build --release --quiet
    "$CARGO_TARGET_DIR/release/bgp-fuzz" all "$ITERATIONS" "$SEED"
}

libfuzzer() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz
    fi
    cargo build --release --quiet
    # Seed corpus: the same fixture-shaped messages the harness starts from.
    "$CARGO_TARGET_DIR/release/bgp-fuzz" corpus corpus
    local status=0
    for t in "${TARGETS[@]}"; do
        # UPDATE and framing also see extended (RFC 8654) messages.
        local max_len=4096
        case "$t" in update | framing) max_len=70000 ;; esac
        echo "== libFuzzer: $t for ${SECONDS_PER_TARGET}s"
        RUSTC_BOOTSTRAP=1 cargo fuzz run --features libfuzzer -O "$t" "corpus/$t" -- \
            -max_total_time="$SECONDS_PER_TARGET" -max_len="$max_len" -seed="$SEED" \
            -print_final_stats=1 || status=1
    done
    return "$status"
}

case "${1:-all}" in
harness) harness ;;
libfuzzer) libfuzzer ;;
all)
    status=0
    harness || status=1
    libfuzzer || status=1
    exit "$status"
    ;;
repro)
    shift
    cargo build --release --quiet
    "$CARGO_TARGET_DIR/release/bgp-fuzz" repro "$@"
    ;;
*)
    sed -n '2,17p' "$0"
    exit 2
    ;;
esac
