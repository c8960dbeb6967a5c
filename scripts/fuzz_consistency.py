"""State consistency after a fuzz run (scripts/fuzz-api.sh), through the API only.

    fuzz_consistency.py URL seed                creates a small world to fuzz on: a network, a
                                                group with a policy and a rule, a profile, and
                                                endpoints created through the plugin API
    fuzz_consistency.py URL before STATE_FILE   checks, then saves what it read
    fuzz_consistency.py URL after STATE_FILE    checks, then compares with what was saved

Checks: every kind the document lists can be listed, each listed object reads back the same
by its key and can be inspected; no two endpoints hold the same address; every endpoint's
address is inside its network's subnet and counted among the network's allocated addresses.
After a restart on the same data directory, every object and every network's allocation
are exactly as before.
"""

import ipaddress
import json
import os
import sys
import urllib.parse
import urllib.request

# The admin token (FUZZ_TOKEN), sent with every call.
HEADERS = {"Authorization": f"Bearer {os.environ['FUZZ_TOKEN']}"} if os.environ.get("FUZZ_TOKEN") else {}


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return r.status, (json.loads(text) if text else None)


def get(url):
    status, v = call("GET", url)
    if status != 200:
        raise RuntimeError(f"GET {url}: {status}")
    return v


def seed(base):
    objs = [
        ("networks", "default:seed-net", {"tenantName": "default", "networkName": "seed-net",
            "encap": "vxlan", "subnet": "30.1.1.0/24", "gateway": "30.1.1.254"}),
        ("policys", "default:seed-pol", {"tenantName": "default", "policyName": "seed-pol"}),
        ("rules", "default:seed-pol:1", {"tenantName": "default", "policyName": "seed-pol",
            "ruleId": "1", "direction": "in", "priority": 10, "protocol": "tcp", "port": 80,
            "action": "allow"}),
        ("netprofiles", "default:seed-prof", {"tenantName": "default", "profileName": "seed-prof",
            "bandwidth": "10mbps", "DSCP": 4, "burst": 16}),
        ("endpointGroups", "default:seed-grp", {"tenantName": "default", "groupName": "seed-grp",
            "networkName": "seed-net", "policies": ["seed-pol"], "netProfile": "seed-prof"}),
    ]
    for plural, key, body in objs:
        status, _ = call("POST", f"{base}/api/v1/{plural}/{key}/", body)
        assert status == 200, (plural, key, status)
    for i in range(6):
        status, alloc = call("POST", f"{base}/api/v1/plugin/endpoints/", {
            "endpointID": f"seed{i:02d}" + "0" * 10, "tenant": "default", "network": "seed-net",
            "group": "seed-grp" if i % 2 else "", "host": f"host{i % 2}"})
        assert status == 200 and alloc["address"].startswith("30.1.1."), (status, alloc)
    print(f"fuzz-consistency (seed): {len(objs)} objects and 6 endpoints created")
    return 0


def main():
    base, phase = sys.argv[1], sys.argv[2]
    if phase == "seed":
        return seed(base)
    state_file = sys.argv[3]
    doc = get(f"{base}/api/v1/openapi.json")
    plurals = sorted(
        p[len("/api/v1/inspect/") : -len("/{key}/")]
        for p in doc["paths"]
        if p.startswith("/api/v1/inspect/")
    )
    errors = []
    objects = {}
    allocations = {}
    for plural in plurals:
        listed = get(f"{base}/api/v1/{plural}/")
        objects[plural] = sorted(listed, key=lambda o: o["key"])
        for o in listed:
            key = urllib.parse.quote(o["key"], safe="")
            one = get(f"{base}/api/v1/{plural}/{key}/")
            if one != o:
                errors.append(f"{plural}/{o['key']}: read back differs from the listing")
            insp = get(f"{base}/api/v1/inspect/{plural}/{key}/")
            if insp.get("Config") != o:
                errors.append(f"inspect {plural}/{o['key']}: Config differs")
            if plural == "networks":
                allocations[o["key"]] = insp["Oper"]

    networks = {n["key"]: n for n in objects.get("networks", [])}
    seen = {}
    per_net = {}
    for e in objects.get("endpoints", []):
        nkey = f"{e['tenantName']}:{e['networkName']}"
        net = networks.get(nkey)
        if net is None:
            errors.append(f"endpoint {e['key']}: its network {nkey} does not exist")
            continue
        per_net[nkey] = per_net.get(nkey, 0) + 1
        for a in e.get("ipAddress", [])[:1]:
            if not a:
                continue
            addr = ipaddress.ip_address(a.split("/")[0])
            if addr in seen:
                errors.append(f"endpoints {seen[addr]} and {e['key']} both hold {addr}")
            seen[addr] = e["key"]
            sub = net["subnet"]
            prefix = sub.split("/")[1]
            first = sub.split("/")[0].split("-")[0]
            subnet = ipaddress.ip_network(f"{first}/{prefix}", strict=False)
            if addr not in subnet:
                errors.append(f"endpoint {e['key']}: {addr} is outside {subnet}")
    for nkey, n in per_net.items():
        used = allocations.get(nkey, {}).get("allocatedAddressesCount", 0)
        if used < n:
            errors.append(f"network {nkey}: {n} endpoints but {used} addresses allocated")

    count = sum(len(v) for v in objects.values())
    state = {"objects": objects, "allocations": {
        k: [v.get("allocatedAddressesCount"), v.get("allocatedIPAddresses")]
        for k, v in allocations.items()}}
    if phase == "before":
        with open(state_file, "w") as f:
            json.dump(state, f)
    else:
        with open(state_file) as f:
            saved = json.load(f)
        for plural in sorted(set(saved["objects"]) | set(state["objects"])):
            a = saved["objects"].get(plural, [])
            b = state["objects"].get(plural, [])
            if a != b:
                errors.append(f"{plural}: {len(a)} objects before the restart, {len(b)} after, or they differ")
        if saved["allocations"] != state["allocations"]:
            errors.append("the networks' address allocations changed across the restart")
    for e in errors:
        print(f"fuzz-consistency ({phase}): {e}", file=sys.stderr)
    print(f"fuzz-consistency ({phase}): {count} objects of {len(plurals)} kinds, "
          f"{len(seen)} endpoint addresses, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
