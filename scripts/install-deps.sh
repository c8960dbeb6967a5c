#!/usr/bin/env bash
# Installs everything contiv-rs needs on Debian 12 (bookworm), as root: the routing
# daemons the labs run (FRR, BIRD 2, GoBGP, ExaBGP), etcd, Open vSwitch, Prometheus,
# nftables, iproute2 and friends, protoc for the gRPC code, and the container runtimes
# (Docker, podman, containerd) the end-to-end tests start by hand. Idempotent and quick when
# everything is there. Package services are never started: the project starts its own
# daemon instances inside lab namespaces.
set -euo pipefail

PACKAGES=(
  frr bird2 gobgpd exabgp
  etcd-server etcd-client
  openvswitch-switch
  prometheus
  nftables iproute2 iputils-ping tcpdump ethtool socat procps psmisc
  protobuf-compiler libprotobuf-dev
  python3 python3-venv gcc make
  # Container runtimes the end-to-end tests drive by hand (no systemd, no registry):
  # Docker 20.10 (CNM remote driver), podman with its CNI backend, containerd's ctr.
  docker.io containerd runc busybox-static
  podman containernetworking-plugins
  # The policy benchmark (issue #12): iperf3 for throughput, ipset and iptables for the
  # linear baseline it loads beside netplugin's nftables ruleset.
  iperf3 ipset iptables
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it installs Debian packages; the labs create network namespaces)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # Keep package services from starting (a systemd machine would otherwise start bgpd,
  # bird, etcd and prometheus in the machine's own namespace).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The REST fuzzer of scripts/fuzz-api.sh (part of make test): schemathesis from PyPI, pinned,
# in a virtualenv this script owns.
VENV=/opt/contiv-rs/venv
SCHEMATHESIS_VERSION=4.32.5
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  echo "install-deps: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  mkdir -p "$(dirname "$VENV")"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH"
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found. contiv-rs needs Rust >= 1.90 (edition 2024); install it with rustup." >&2
  exit 1
fi
ver=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n1.90.0\n' "$ver" | sort -V | head -1)" != "1.90.0" ]; then
  echo "install-deps: rustc $ver is too old; contiv-rs needs Rust >= 1.90." >&2
  exit 1
fi
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/[-+~].*//'; }
echo "install-deps: ok (rustc $ver, frr $(pkgver frr), bird $(pkgver bird2), gobgp $(pkgver gobgpd), exabgp $(pkgver exabgp), etcd $(pkgver etcd-server), ovs $(pkgver openvswitch-switch), schemathesis $SCHEMATHESIS_VERSION)"
