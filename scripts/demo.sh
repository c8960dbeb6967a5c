#!/usr/bin/env bash
# The demo: deploys the quickstart fabric (two ToRs running FRR, two hosts) onto network
# namespaces, shows the routers' BGP sessions and routes, pings from host1 to host2
# across both ToRs, and tears everything down again (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

TOPO=topologies/quickstart/quickstart.clab.yml
cargo build -q -p containerlab --bin contiv-lab
LAB=target/debug/contiv-lab

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cleanup() {
  step "contiv-lab destroy -t $TOPO"
  "$LAB" destroy -t "$TOPO"
}
trap cleanup EXIT

step "contiv-lab deploy -t $TOPO --wait-bgp 60"
"$LAB" deploy -t "$TOPO" --reconfigure --wait-bgp 60

step "BGP sessions, as each router reports them"
"$LAB" inspect -t "$TOPO" --sessions

step "tor1: show bgp summary"
"$LAB" exec -t "$TOPO" --node tor1 --cmd "vtysh -c 'show bgp summary'"

# Sessions come up a moment before their routes reach the kernel: wait for the route.
for _ in $(seq 1 100); do
  "$LAB" exec -t "$TOPO" --node tor1 --cmd 'ip route show 10.1.2.0/31' | grep -q via && break
  sleep 0.1
done

step "tor1: routes learned over BGP, in its kernel FIB"
"$LAB" exec -t "$TOPO" --node tor1 --cmd 'ip route show proto bgp'

step "host1 (10.1.1.1) -> host2 (10.1.2.1), across tor1 and tor2"
"$LAB" exec -t "$TOPO" --node host1 --cmd 'ping -c 3 10.1.2.1'

step "tor2: the BGP table, with the AS path of every prefix"
"$LAB" exec -t "$TOPO" --node tor2 --cmd "vtysh -c 'show bgp ipv4 unicast'"
