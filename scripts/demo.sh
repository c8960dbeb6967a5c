#!/usr/bin/env bash
# The demo: Contiv's quick start in routing mode on the quickstart fabric (two FRR ToRs,
# two hosts, each host with its own dockerd and netplugin), every command printed with
# its output. Everything it starts is torn down at the end, also on Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

cargo build -q -p netplugin -p netctl -p containerlab --bins
cargo build -q -p contiv-tests --example quickstart_demo
exec target/debug/examples/quickstart_demo
