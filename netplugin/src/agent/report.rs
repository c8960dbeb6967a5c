//! The host report: what the agent runs (endpoints, BGP sessions, learned routes, the
//! forwarding mode, why BGP is not in effect) sent to netmaster as a typed
//! [`HostReport`]; a fresh report also keeps the host's endpoints from being collected
//! as a dead host's.

use std::sync::Arc;
use std::time::Duration;

use bgp_speaker::driver::PeerStatus;
use contiv_model::feed::{EndpointReport, HostReport, NeighborReport, RouteReport};

use super::Agent;
use super::LocalRecord;
use super::reconcile::Status;

/// While nothing changes, one periodic report in this many goes out (the others would
/// say the same again): the keepalive that keeps a live host's endpoints from being
/// collected (netmaster waits far longer than this many periods).
pub const KEEPALIVE_PERIODS: u32 = 10;

/// The least time between two reports.
const COALESCE: Duration = Duration::from_secs(1);

/// Publishes the host report to netmaster at once when what it says changed (a changed
/// status that leaves the report as it was sends nothing), every `report_every` while
/// the status moves (session counters), and every [`KEEPALIVE_PERIODS`] periods while
/// nothing does — an idle agent neither builds nor sends its whole route table every few
/// seconds. Every report restarts the period, so changes never add to the idle rate.
pub(super) async fn report_loop(agent: Arc<Agent>) {
    let mut tick = tokio::time::interval(agent.cfg.report_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_rx = agent.status.clone();
    let mut last: Option<HostReport> = None;
    // The status and endpoint count the last report was built from, and the periods
    // skipped since.
    let mut built_from: Option<(Arc<Status>, usize)> = None;
    let mut skipped = 0;
    loop {
        let periodic = tokio::select! {
            _ = tick.tick() => true,
            res = status_rx.changed() => {
                if res.is_err() {
                    return;
                }
                false
            }
        };
        let status = status_rx.borrow_and_update().clone();
        let endpoints = agent.endpoints().await;
        let source = (status.clone(), endpoints.len());
        if periodic
            && skipped + 1 < KEEPALIVE_PERIODS
            && built_from
                .as_ref()
                .is_some_and(|(s, n)| Arc::ptr_eq(s, &source.0) && *n == source.1)
        {
            skipped += 1;
            continue;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let report = host_report(&status, &endpoints, now);
        built_from = Some(source);
        if !periodic && last.as_ref().is_some_and(|l| same_news(l, &report)) {
            continue;
        }
        if let Err(e) = agent.master.report(&agent.cfg.host, &report).await {
            // Not remembered as sent: the next period tries again.
            tracing::warn!("host report to netmaster: {e}");
            built_from = None;
            continue;
        }
        last = Some(report);
        skipped = 0;
        tick.reset();
        // Coalesce bursts of changes (many endpoints at once) into one report a second:
        // a report carries every endpoint and route of the host.
        tokio::time::sleep(COALESCE).await;
    }
}

/// Whether two reports say the same apart from the time passing (sessions' uptime).
fn same_news(a: &HostReport, b: &HostReport) -> bool {
    let timeless = |r: &HostReport| {
        let mut r = r.clone();
        for n in &mut r.neighbors {
            n.uptime = None;
        }
        r
    };
    timeless(a) == timeless(b)
}

/// The report of a status and the host's endpoints at `now` (seconds since the epoch).
pub(super) fn host_report(status: &Status, endpoints: &[LocalRecord], now: u64) -> HostReport {
    HostReport {
        endpoints: endpoints.iter().map(endpoint).collect(),
        neighbors: status.neighbors.iter().map(|n| neighbor(n, now)).collect(),
        routes: status
            .learned
            .iter()
            .map(|(p, nh)| RouteReport {
                prefix: p.to_string(),
                nexthops: nh.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        fwd_mode: status.fwd_mode.clone(),
        bgp_error: status.bgp_error.clone(),
        policy: status.policy.clone(),
        last_seen: 0,
        rejected_routes: status
            .rejected_routes
            .iter()
            .map(|(p, why)| contiv_model::feed::RejectedRouteReport {
                prefix: p.to_string(),
                reason: why.clone(),
            })
            .collect(),
    }
}

fn endpoint(r: &LocalRecord) -> EndpointReport {
    EndpointReport {
        endpoint_id: r.endpoint_id.clone(),
        tenant: r.target.tenant.clone(),
        network: r.target.network.clone(),
        group: r.target.group.clone().unwrap_or_default(),
        address: r.address.to_string(),
        mac: r.mac.to_string(),
        host_intf: r.host_ifname.clone(),
    }
}

fn neighbor(n: &PeerStatus, now: u64) -> NeighborReport {
    NeighborReport {
        address: n.address.to_string(),
        remote_as: n.remote_as,
        state: Some(n.state.to_lowercase()),
        uptime: Some(n.established_at.map(|t| now.saturating_sub(t)).unwrap_or(0)),
        prefixes_received: Some(n.prefixes_received),
        prefixes_advertised: Some(n.prefixes_advertised),
        updates_in: Some(n.updates_in),
        updates_out: Some(n.updates_out),
        flaps: Some(n.flaps),
        last_error: n.last_error.clone(),
        capabilities: Some(n.capabilities.clone()),
        bfd: n.bfd.clone(),
    }
}
