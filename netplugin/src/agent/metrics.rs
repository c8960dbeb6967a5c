//! netplugin's Prometheus metrics (OpenMetrics text on `/metrics`).
//!
//! Label sets are bounded: per-neighbor families are keyed by the neighbor address (from
//! the host's `Bgp` object, a handful) and are removed when a neighbor goes; operation
//! counters by a fixed set of operation names.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::reconcile::Status;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NeighborLabels {
    pub neighbor: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
}

impl OpLabels {
    pub fn new(op: &str) -> OpLabels {
        OpLabels { op: op.to_string() }
    }
}

/// Counters the speaker keeps as totals, turned into Prometheus counters by deltas.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    updates_in: u64,
    updates_out: u64,
    transitions: u64,
}

/// Every metric of the agent.
pub struct Metrics {
    registry: Registry,
    pub session_established: Family<NeighborLabels, Gauge>,
    pub session_uptime: Family<NeighborLabels, Gauge>,
    pub prefixes_received: Family<NeighborLabels, Gauge>,
    pub prefixes_advertised: Family<NeighborLabels, Gauge>,
    pub updates_in: Family<NeighborLabels, Counter>,
    pub updates_out: Family<NeighborLabels, Counter>,
    pub fsm_transitions: Family<NeighborLabels, Counter>,
    pub endpoints: Gauge,
    pub fib_routes: Gauge,
    /// 1 while routes learned before a restart are held (graceful restart).
    pub holding_learned: Gauge,
    pub originated: Gauge,
    pub reconcile_errors: Counter,
    pub reconcile_seconds: Histogram,
    pub fib_sync_seconds: Histogram,
    pub endpoint_ops: Family<OpLabels, Counter>,
    seen: Mutex<BTreeMap<String, Seen>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("netplugin");
        let m = Metrics {
            session_established: Family::default(),
            session_uptime: Family::default(),
            prefixes_received: Family::default(),
            prefixes_advertised: Family::default(),
            updates_in: Family::default(),
            updates_out: Family::default(),
            fsm_transitions: Family::default(),
            endpoints: Gauge::default(),
            fib_routes: Gauge::default(),
            holding_learned: Gauge::default(),
            originated: Gauge::default(),
            reconcile_errors: Counter::default(),
            reconcile_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            fib_sync_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            endpoint_ops: Family::default(),
            seen: Mutex::new(BTreeMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "bgp_session_established",
            "1 when the BGP session with the neighbor is Established",
            m.session_established.clone(),
        );
        registry.register(
            "bgp_session_uptime_seconds",
            "Seconds since the session with the neighbor was established (0 when down)",
            m.session_uptime.clone(),
        );
        registry.register(
            "bgp_prefixes_received",
            "Prefixes the neighbor currently advertises to us",
            m.prefixes_received.clone(),
        );
        registry.register(
            "bgp_prefixes_advertised",
            "Prefixes we currently advertise to the neighbor",
            m.prefixes_advertised.clone(),
        );
        registry.register(
            "bgp_updates_received",
            "UPDATE messages received from the neighbor",
            m.updates_in.clone(),
        );
        registry.register(
            "bgp_updates_sent",
            "UPDATE messages sent to the neighbor",
            m.updates_out.clone(),
        );
        registry.register(
            "bgp_fsm_transitions",
            "BGP FSM state transitions of the session with the neighbor",
            m.fsm_transitions.clone(),
        );
        registry.register(
            "fib_holding_learned",
            "1 while routes learned before a restart are held until the sessions converge",
            m.holding_learned.clone(),
        );
        registry.register(
            "endpoints",
            "Endpoints plumbed on this host",
            m.endpoints.clone(),
        );
        registry.register(
            "fib_routes",
            "Routes netplugin wants in the kernel FIB (local /32s and learned routes)",
            m.fib_routes.clone(),
        );
        registry.register(
            "bgp_originated_prefixes",
            "Prefixes this host originates into BGP",
            m.originated.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile passes that ended with an error",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes",
            m.reconcile_seconds.clone(),
        );
        registry.register(
            "fib_sync_duration_seconds",
            "Duration of kernel FIB syncs (read back, diff, apply)",
            m.fib_sync_seconds.clone(),
        );
        registry.register(
            "endpoint_operations",
            "Endpoint operations served (add, del)",
            m.endpoint_ops.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Updates the gauges and counters from a reconcile status.
    pub fn observe(&self, s: &Status) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.holding_learned.set(i64::from(s.holding_learned));
        let present: std::collections::BTreeSet<String> =
            s.neighbors.iter().map(|n| n.address.to_string()).collect();
        let gone: Vec<String> = seen
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            let l = NeighborLabels {
                neighbor: k.clone(),
            };
            self.session_established.remove(&l);
            self.session_uptime.remove(&l);
            self.prefixes_received.remove(&l);
            self.prefixes_advertised.remove(&l);
            self.updates_in.remove(&l);
            self.updates_out.remove(&l);
            self.fsm_transitions.remove(&l);
            seen.remove(&k);
        }
        for n in &s.neighbors {
            let key = n.address.to_string();
            let l = NeighborLabels {
                neighbor: key.clone(),
            };
            let up = n.state.eq_ignore_ascii_case("established");
            self.session_established
                .get_or_create(&l)
                .set(i64::from(up));
            self.session_uptime.get_or_create(&l).set(
                n.established_at
                    .filter(|_| up)
                    .map(|t| now.saturating_sub(t) as i64)
                    .unwrap_or(0),
            );
            self.prefixes_received
                .get_or_create(&l)
                .set(n.prefixes_received as i64);
            self.prefixes_advertised
                .get_or_create(&l)
                .set(n.prefixes_advertised as i64);
            let last = seen.entry(key).or_default();
            // A restarted speaker starts its totals again from 0.
            let delta = |new: u64, old: u64| if new >= old { new - old } else { new };
            self.updates_in
                .get_or_create(&l)
                .inc_by(delta(n.updates_in, last.updates_in));
            self.updates_out
                .get_or_create(&l)
                .inc_by(delta(n.updates_out, last.updates_out));
            self.fsm_transitions
                .get_or_create(&l)
                .inc_by(delta(n.transitions, last.transitions));
            *last = Seen {
                updates_in: n.updates_in,
                updates_out: n.updates_out,
                transitions: n.transitions,
            };
        }
        self.fib_routes.set(s.fib_routes as i64);
        self.endpoints.set(s.endpoints as i64);
        self.originated.set(s.advertised.len() as i64);
    }

    /// The classic Prometheus text format (0.0.4), for scrapers that do not ask for
    /// OpenMetrics (and `promtool check metrics`): counter families are named with their
    /// `_total` suffix, and there is no `# EOF`.
    pub fn render_classic(&self) -> String {
        classic(&self.render())
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        self.render_with("")
    }

    /// The OpenMetrics text with families rendered elsewhere (`extra`, OpenMetrics
    /// text without `# EOF`) added before its end.
    pub fn render_with(&self, extra: &str) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        if !extra.is_empty() {
            match out.strip_suffix("# EOF\n") {
                Some(body) => out = format!("{body}{extra}# EOF\n"),
                None => out.push_str(extra),
            }
        }
        out
    }
}

/// At most this many rules get series of their own (the rest are summed under
/// `rule="_other"`), so a huge policy cannot blow up the scrape.
pub const MAX_RULE_SERIES: usize = 1000;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The policy families, in OpenMetrics text, from the counters of our nftables tables
/// (`(family, name)` → count) and what each rule counter counts.
pub fn policy_text(
    counts: &BTreeMap<(String, String), crate::policy::driver::Count>,
    rules: &BTreeMap<String, crate::policy::compile::CounterLabels>,
) -> String {
    use std::fmt::Write as _;
    let mut per_rule: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
    // In the order of their labels, so which rules get a series of their own moves
    // only as rules come and go around them.
    let mut ordered: Vec<(&String, &crate::policy::compile::CounterLabels)> =
        rules.iter().collect();
    ordered.sort_by(|a, b| a.1.cmp(b.1));
    for (i, (name, l)) in ordered.into_iter().enumerate() {
        let c = counts
            .get(&("inet".to_string(), name.clone()))
            .copied()
            .unwrap_or_default();
        let key = if i < MAX_RULE_SERIES {
            (l.tenant.clone(), l.policy.clone(), l.rule.clone())
        } else {
            ("_other".into(), "_other".into(), "_other".into())
        };
        let e = per_rule.entry(key).or_default();
        e.0 += c.packets;
        e.1 += c.bytes;
    }
    let mut out = String::new();
    for (metric, help, pick) in [
        (
            "netplugin_policy_rule_packets",
            "Packets of new connections a policy rule decided on this host.",
            0,
        ),
        (
            "netplugin_policy_rule_bytes",
            "Bytes of new connections' packets a policy rule decided on this host.",
            1,
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} counter");
        for ((t, p, r), (pk, by)) in &per_rule {
            let v = if pick == 0 { pk } else { by };
            let _ = writeln!(
                out,
                "{metric}_total{{tenant=\"{}\",policy=\"{}\",rule=\"{}\"}} {v}",
                escape(t),
                escape(p),
                escape(r)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP netplugin_policy_dropped_packets Packets dropped outside the rules: forged sources, new connections across tenants, encapsulated packets and IPv6 from containers."
    );
    let _ = writeln!(out, "# TYPE netplugin_policy_dropped_packets counter");
    for (reason, family, name) in [
        ("spoofed", "inet", crate::policy::compile::SPOOFED),
        ("spoofed_arp", "arp", crate::policy::compile::SPOOFED),
        ("tenant_isolation", "inet", crate::policy::compile::ISOLATED),
        ("encapsulated", "inet", crate::policy::compile::ENCAPSULATED),
        ("ipv6", "inet", crate::policy::compile::IPV6),
    ] {
        let c = counts
            .get(&(family.to_string(), name.to_string()))
            .copied()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "netplugin_policy_dropped_packets_total{{reason=\"{reason}\"}} {}",
            c.packets
        );
    }
    out
}

/// Rewrites OpenMetrics text as the classic text format.
pub fn classic(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        match meta {
            Some((p, rest)) => {
                let name = rest.split(' ').next().unwrap_or("");
                if counters.contains(name) {
                    out.push_str(p);
                    out.push_str(name);
                    out.push_str("_total");
                    out.push_str(&rest[name.len()..]);
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_speaker::driver::PeerStatus;

    fn peer(addr: &str, state: &str, updates_in: u64) -> PeerStatus {
        PeerStatus {
            address: addr.parse().unwrap(),
            remote_as: Some(65001),
            state: state.into(),
            established_at: Some(1),
            updates_in,
            updates_out: 1,
            prefixes_received: 3,
            prefixes_advertised: 2,
            flaps: 0,
            last_error: None,
            transitions: 4,
            eor_received: true,
            stale_routes: 0,
            capabilities: Vec::new(),
            dynamic: false,
            bfd: None,
        }
    }

    #[test]
    fn sessions_come_and_go_and_counters_only_grow() {
        let m = Metrics::new();
        let mut s = Status {
            neighbors: vec![peer("10.1.1.0", "Established", 5)],
            ..Default::default()
        };
        m.observe(&s);
        let t = m.render();
        assert!(
            t.contains("netplugin_bgp_session_established{neighbor=\"10.1.1.0\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("netplugin_bgp_updates_received_total{neighbor=\"10.1.1.0\"} 5"),
            "{t}"
        );
        s.neighbors = vec![peer("10.1.1.0", "Established", 7)];
        m.observe(&s);
        assert!(
            m.render()
                .contains("netplugin_bgp_updates_received_total{neighbor=\"10.1.1.0\"} 7")
        );
        // A speaker restart resets its totals: the counter holds.
        s.neighbors = vec![peer("10.1.1.0", "Active", 0)];
        m.observe(&s);
        let t = m.render();
        assert!(
            t.contains("netplugin_bgp_updates_received_total{neighbor=\"10.1.1.0\"} 7"),
            "{t}"
        );
        assert!(
            t.contains("netplugin_bgp_session_established{neighbor=\"10.1.1.0\"} 0"),
            "{t}"
        );
        s.neighbors.clear();
        m.observe(&s);
        assert!(!m.render().contains("10.1.1.0"));
        assert!(m.render().ends_with("# EOF\n"));
        let c = m.render_classic();
        assert!(
            c.contains("# TYPE netplugin_reconcile_errors_total counter"),
            "{c}"
        );
        assert!(
            c.contains("# HELP netplugin_reconcile_errors_total "),
            "{c}"
        );
        assert!(!c.contains("# EOF"));
    }

    #[test]
    fn policy_counters_render_per_rule_and_per_drop_reason() {
        use crate::policy::compile::CounterLabels;
        use crate::policy::driver::Count;
        let rules: BTreeMap<String, CounterLabels> = [(
            "r_1".to_string(),
            CounterLabels {
                tenant: "default".into(),
                policy: "prod_web".into(),
                rule: "1".into(),
            },
        )]
        .into();
        let counts: BTreeMap<(String, String), Count> = [
            (
                ("inet".to_string(), "r_1".to_string()),
                Count {
                    packets: 3,
                    bytes: 180,
                },
            ),
            (
                ("inet".to_string(), "spoofed".to_string()),
                Count {
                    packets: 2,
                    bytes: 120,
                },
            ),
        ]
        .into();
        let text = policy_text(&counts, &rules);
        assert!(text.contains(
            "netplugin_policy_rule_packets_total{tenant=\"default\",policy=\"prod_web\",rule=\"1\"} 3"
        ));
        assert!(text.contains("netplugin_policy_rule_bytes_total{tenant=\"default\",policy=\"prod_web\",rule=\"1\"} 180"));
        assert!(text.contains("netplugin_policy_dropped_packets_total{reason=\"spoofed\"} 2"));
        assert!(
            text.contains("netplugin_policy_dropped_packets_total{reason=\"tenant_isolation\"} 0")
        );
        let m = Metrics::new();
        let all = m.render_with(&text);
        assert!(all.ends_with("# EOF\n"));
        assert!(all.contains("# TYPE netplugin_policy_rule_packets counter"));
        let c = classic(&all);
        assert!(
            c.contains("# TYPE netplugin_policy_rule_packets_total counter"),
            "{c}"
        );
    }
}
