//! netmaster's Prometheus metrics, on an explicit registry (no global state), served at
//! `/metrics` in the Prometheus text format. Label sets are bounded: routes are the
//! matched URL templates (never raw paths), objects are kinds, networks are the
//! configured networks.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric netmaster exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<Labels, Counter>,
    pub request_seconds: Family<Labels, Histogram>,
    pub store_ops: Family<Labels, Counter>,
    pub store_seconds: Family<Labels, Histogram>,
    pub leader: Gauge,
    pub objects: Family<Labels, Gauge>,
    pub ipam_used: Family<Labels, Gauge>,
    pub ipam_utilisation: Family<Labels, Gauge<f64, AtomicU64>>,
    pub feed_subscribers: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("netmaster");
        let requests = Family::<Labels, Counter>::default();
        let request_seconds = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let store_ops = Family::<Labels, Counter>::default();
        let store_seconds = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let leader = Gauge::default();
        let objects = Family::<Labels, Gauge>::default();
        let ipam_used = Family::<Labels, Gauge>::default();
        let ipam_utilisation = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let feed_subscribers = Gauge::default();
        registry.register(
            "http_requests",
            "API requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by route template and method",
            request_seconds.clone(),
        );
        registry.register(
            "store_operations",
            "State store operations by kind and result",
            store_ops.clone(),
        );
        registry.register(
            "store_operation_duration_seconds",
            "State store operation latency by kind",
            store_seconds.clone(),
        );
        registry.register(
            "leader",
            "1 when this netmaster is the leader, else 0",
            leader.clone(),
        );
        registry.register("objects", "Configured objects by kind", objects.clone());
        registry.register(
            "ipam_allocated_addresses",
            "Addresses allocated per network",
            ipam_used.clone(),
        );
        registry.register(
            "ipam_utilisation_ratio",
            "Allocated share of each network's allocatable addresses",
            ipam_utilisation.clone(),
        );
        registry.register(
            "feed_subscribers",
            "netplugins streaming the feed now",
            feed_subscribers.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            store_ops,
            store_seconds,
            leader,
            objects,
            ipam_used,
            ipam_utilisation,
            feed_subscribers,
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format_with_labels() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&vec![
                ("route", "/api/v1/networks/{key}/".into()),
                ("status", "201".into()),
            ])
            .inc();
        m.leader.set(1);
        let text = m.render();
        assert!(
            text.contains(
                "netmaster_http_requests_total{route=\"/api/v1/networks/{key}/\",status=\"201\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("netmaster_leader 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
