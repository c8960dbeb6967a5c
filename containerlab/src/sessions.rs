//! BGP sessions as each daemon itself reports them: FRR's `show bgp neighbors json`,
//! BIRD's `show protocols all`, GoBGP's `gobgp -j neighbor` and ExaBGP's
//! `show neighbor summary`. The parsers are pure and tested on captured output; the
//! queries run the daemons' own CLIs against the instance's sockets.

use std::process::Command;

use serde::Serialize;
use serde_json::Value;

use crate::daemon::DaemonKind;
use crate::error::{Error, Result};
use crate::plan::NodePlan;
use crate::proc;

/// One BGP session of one router node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub node: String,
    pub daemon: DaemonKind,
    /// The neighbor (address, interface or BIRD protocol name).
    pub peer: String,
    /// The daemon's own word for the state (`Established`, `Active`, `up`, ...).
    pub state: String,
    pub established: bool,
    /// Prefixes received and accepted, when the daemon says.
    pub prefixes: Option<u64>,
}

/// A session seen by a parser, before the node is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    pub peer: String,
    pub state: String,
    pub established: bool,
    pub prefixes: Option<u64>,
}

/// Parses FRR's `show bgp neighbors json`.
pub fn parse_frr(json: &str) -> Result<Vec<PeerState>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("FRR output is not JSON: {e}"))?;
    let Some(map) = v.as_object() else {
        return Err("FRR output is not a JSON object".into());
    };
    let mut out = Vec::new();
    for (peer, info) in map {
        let Some(state) = info.get("bgpState").and_then(Value::as_str) else {
            continue;
        };
        let prefixes = info
            .get("addressFamilyInfo")
            .and_then(Value::as_object)
            .map(|afs| {
                afs.values()
                    .filter_map(|af| af.get("acceptedPrefixCounter").and_then(Value::as_u64))
                    .sum()
            });
        out.push(PeerState {
            peer: peer.clone(),
            state: state.to_string(),
            established: state == "Established",
            prefixes,
        });
    }
    Ok(out)
}

/// Parses BIRD 2's `show protocols all` (BGP protocols only).
pub fn parse_bird(text: &str) -> Vec<PeerState> {
    let mut out: Vec<PeerState> = Vec::new();
    let mut in_bgp = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            in_bgp = cols.len() >= 4 && cols[1] == "BGP";
            if in_bgp {
                let established = cols.contains(&"Established");
                out.push(PeerState {
                    peer: cols[0].to_string(),
                    state: if established {
                        "Established".into()
                    } else {
                        cols[3].to_string()
                    },
                    established,
                    prefixes: None,
                });
            }
            continue;
        }
        let Some(cur) = out.last_mut().filter(|_| in_bgp) else {
            continue;
        };
        let l = line.trim();
        if let Some(s) = l.strip_prefix("BGP state:") {
            cur.state = s.trim().to_string();
            cur.established = cur.state == "Established";
        } else if l.starts_with("Neighbor range:") {
            // A listener for dynamic peers, not a session: its sessions are listed apart.
            out.pop();
            in_bgp = false;
        } else if let Some(a) = l.strip_prefix("Neighbor address:") {
            cur.peer = format!("{} ({})", a.trim(), cur.peer);
        } else if let Some(r) = l.strip_prefix("Routes:") {
            let imported = r
                .split(',')
                .find_map(|p| p.trim().strip_suffix(" imported"))
                .and_then(|n| n.trim().parse::<u64>().ok());
            if let Some(n) = imported {
                *cur.prefixes.get_or_insert(0) += n;
            }
        }
    }
    out
}

/// Parses GoBGP's `gobgp -j neighbor`.
pub fn parse_gobgp(json: &str) -> Result<Vec<PeerState>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("GoBGP output is not JSON: {e}"))?;
    let Some(peers) = v.as_array() else {
        return Err("GoBGP output is not a JSON array".into());
    };
    let mut out = Vec::new();
    for p in peers {
        let peer = p
            .pointer("/conf/neighbor_address")
            .or_else(|| p.pointer("/state/neighbor_address"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let raw = p.pointer("/state/session_state");
        let (state, established) = match raw {
            Some(Value::Number(n)) => {
                let n = n.as_u64().unwrap_or(0);
                let name = match n {
                    1 => "Idle",
                    2 => "Connect",
                    3 => "Active",
                    4 => "OpenSent",
                    5 => "OpenConfirm",
                    6 => "Established",
                    _ => "Unknown",
                };
                (name.to_string(), n == 6)
            }
            Some(Value::String(s)) => (s.clone(), s.eq_ignore_ascii_case("established")),
            _ => ("Idle".to_string(), false),
        };
        let prefixes = p.get("afi_safis").and_then(Value::as_array).map(|afs| {
            afs.iter()
                .filter_map(|af| af.pointer("/state/accepted").and_then(Value::as_u64))
                .sum()
        });
        out.push(PeerState {
            peer,
            state,
            established,
            prefixes,
        });
    }
    Ok(out)
}

/// Parses ExaBGP's `show neighbor summary`.
pub fn parse_exabgp(text: &str) -> Vec<PeerState> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || cols[0] == "Peer" || cols[0].parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        let state = cols[3].to_string();
        let received = cols.last().and_then(|c| c.parse().ok());
        out.push(PeerState {
            peer: cols[0].to_string(),
            established: state.eq_ignore_ascii_case("established"),
            state,
            prefixes: received,
        });
    }
    out
}

/// Asks a node's daemon for its sessions.
pub fn query(node: &NodePlan) -> Result<Vec<Session>> {
    let context = format!("node '{}'", node.node);
    let peers = match node.daemon {
        DaemonKind::None => return Ok(Vec::new()),
        DaemonKind::Frr => {
            let out = proc::run(
                &context,
                Command::new("vtysh")
                    .arg("--vty_socket")
                    .arg(node.dir.join("run"))
                    .args(["-c", "show bgp neighbors json"]),
                None,
            )?;
            parse_frr(&out).map_err(|m| bad_output(&context, m))?
        }
        DaemonKind::Bird => {
            let out = proc::run(
                &context,
                Command::new("birdc")
                    .arg("-s")
                    .arg(node.dir.join("bird.ctl"))
                    .args(["show", "protocols", "all"]),
                None,
            )?;
            parse_bird(&out)
        }
        DaemonKind::Gobgp => {
            let out = proc::run(
                &context,
                Command::new("ip").args([
                    "netns",
                    "exec",
                    &node.namespace,
                    "gobgp",
                    "-u",
                    "127.0.0.1",
                    "-p",
                    "50051",
                    "-j",
                    "neighbor",
                ]),
                None,
            )?;
            parse_gobgp(&out).map_err(|m| bad_output(&context, m))?
        }
        DaemonKind::Exabgp => {
            let cli = node.dir.join("bin/exabgpcli");
            let out = proc::run(
                &context,
                Command::new("timeout")
                    .args(["5", "ip", "netns", "exec", &node.namespace])
                    .arg(cli)
                    .args(["show", "neighbor", "summary"]),
                None,
            )?;
            parse_exabgp(&out)
        }
    };
    Ok(peers
        .into_iter()
        .map(|p| Session {
            node: node.node.clone(),
            daemon: node.daemon,
            peer: p.peer,
            state: p.state,
            established: p.established,
            prefixes: p.prefixes,
        })
        .collect())
}

fn bad_output(context: &str, message: String) -> Error {
    Error::Command {
        context: context.to_string(),
        command: "session query".into(),
        stderr: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frr_neighbors() {
        let json = r#"{
          "10.0.0.1": {"remoteAs": 65002, "bgpState": "Established",
             "addressFamilyInfo": {"ipv4Unicast": {"acceptedPrefixCounter": 3},
                                   "ipv6Unicast": {"acceptedPrefixCounter": 1}}},
          "eth2": {"remoteAs": 65003, "bgpState": "Active"},
          "HOSTS": {"peerGroupMembers": {}}
        }"#;
        let got = parse_frr(json).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            PeerState {
                peer: "10.0.0.1".into(),
                state: "Established".into(),
                established: true,
                prefixes: Some(4)
            }
        );
        assert!(!got[1].established);
        assert!(parse_frr("% Unknown command").is_err());
        assert!(parse_frr("{}").unwrap().is_empty());
    }

    #[test]
    fn bird_protocols() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     15:34:14.123
kernel1    Kernel     master4    up     15:34:14.123
  Channel ipv4
    State:          UP
    Routes:         9 imported, 0 exported, 0 preferred
spine1     BGP        ---        up     15:34:15.000  Established
  BGP state:          Established
    Neighbor address: 10.0.1.0
    Neighbor AS:      65000
  Channel ipv4
    State:          UP
    Routes:         5 imported, 2 exported, 5 preferred
spine2     BGP        ---        start  15:34:15.000  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.0.2.0
hosts      BGP        ---        start  15:43:17.687  Passive
  BGP state:          Passive
    Neighbor range:   10.2.2.0/24
    Neighbor AS:      0
  Channel ipv4
    Routes:         0 imported, 0 exported, 0 preferred
host1      BGP        ---        up     15:44:00.000  Established
  BGP state:          Established
    Neighbor address: 10.2.2.1
";
        let got = parse_bird(text);
        assert_eq!(
            got.len(),
            3,
            "the dynamic-peer listener is not a session: {got:?}"
        );
        assert_eq!(got[2].peer, "10.2.2.1 (host1)");
        assert_eq!(got[0].peer, "10.0.1.0 (spine1)");
        assert!(got[0].established);
        assert_eq!(got[0].prefixes, Some(5));
        assert_eq!(got[1].state, "Active");
        assert!(!got[1].established);
    }

    #[test]
    fn gobgp_neighbors() {
        let json = r#"[{"conf":{"neighbor_address":"10.0.2.0","peer_asn":65000},
                        "state":{"session_state":6},
                        "afi_safis":[{"state":{"accepted":7}}]},
                       {"conf":{"neighbor_address":"10.0.3.0"},"state":{"session_state":3}},
                       {"conf":{"neighbor_address":"10.0.4.0"},"state":{"session_state":"ESTABLISHED"}}]"#;
        let got = parse_gobgp(json).unwrap();
        assert!(got[0].established && got[0].prefixes == Some(7));
        assert_eq!(got[1].state, "Active");
        assert!(got[2].established);
        assert!(parse_gobgp("{}").is_err());
    }

    #[test]
    fn exabgp_summary() {
        let text = "Peer            AS        up/down state       |     #sent     #recvd
10.0.3.0        65000     0:00:12 established          1          4
10.0.4.0        65000     down    active               0          0
";
        let got = parse_exabgp(text);
        assert_eq!(got.len(), 2);
        assert!(got[0].established && got[0].prefixes == Some(4));
        assert!(!got[1].established);
    }
}
