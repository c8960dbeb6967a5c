#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the runner's privileged tests and the
# end-to-end fabric tests. As root the privileged tests are required to run (a missing
# privilege fails them instead of skipping them). Checks afterwards that the tests left no
# lab namespace behind.
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
