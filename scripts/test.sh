#!/usr/bin/env bash
# Runs every test of the workspace: the REST fuzz run (scripts/fuzz-api.sh), unit tests,
# the runner's privileged tests and the end-to-end fabric tests. As root the privileged
# tests are required to run (a missing privilege fails them instead of skipping them).
# Checks afterwards that the tests left no lab namespace behind.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" -eq 0 ]; then
  export CONTIV_REQUIRE_ROOT_TESTS=1
else
  echo "test: not root - tests that create namespaces and daemons will be skipped" >&2
fi

lab_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^clab-' | sort || true; }
before=$(lab_namespaces)

cargo build --workspace --all-targets
status=0

# The REST fuzz run against the real netmaster binary (issue #13). It needs the fuzzer
# install-deps.sh installs as root; without it (an unprivileged run) it is skipped like the
# privileged tests. It runs before the test runner, whose summary then closes the output.
target=${CARGO_TARGET_DIR:-target}
if [ -x /opt/contiv-rs/venv/bin/schemathesis ] || [ "$(id -u)" -eq 0 ]; then
  scripts/fuzz-api.sh "$target/debug/netmaster" || status=$?
else
  echo "test: schemathesis not installed (scripts/install-deps.sh) - REST fuzz run skipped" >&2
fi

if cargo nextest --version >/dev/null 2>&1; then
  profile=default
  [ -n "${CI:-}" ] && profile=ci
  cargo nextest run --workspace --profile "$profile" || status=$?
else
  cargo test --workspace --no-fail-fast || status=$?
fi

after=$(lab_namespaces)
leaked=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
if [ -n "$leaked" ]; then
  echo "test: lab namespaces left behind by the tests:" >&2
  echo "$leaked" >&2
  status=1
fi
exit $status
