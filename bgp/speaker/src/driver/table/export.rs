//! Export's I/O glue: [`bgp::rib::Export`] decides what each session is sent; this
//! hands the UPDATEs it encodes to the session's writer (tagged with the connection),
//! logs what did not encode, and keeps the advertised count in the status.

use super::*;

impl Table {
    pub(super) fn fill_all(&mut self) {
        let addrs: Vec<IpAddr> = self.sessions.keys().copied().collect();
        for a in addrs {
            self.fill(a);
        }
    }

    /// Sends a session what its pending bits say, within its flow-control budget;
    /// End-of-RIB once the initial table is out.
    fn fill(&mut self, addr: IpAddr) {
        let Some(s) = self.sessions.get_mut(&addr) else {
            return;
        };
        let filled = self
            .export
            .fill(&self.rib, &mut self.interner, &mut s.export);
        for p in &filled.problems {
            tracing::warn!("{addr}: {p}");
        }
        for b in filled.batches {
            let _ = s.out.send(SessionOut::Updates {
                conn: s.conn,
                bytes: b.bytes,
                updates: b.updates,
            });
        }
        let n = s.export.advertised();
        self.set_status(addr, |st| st.prefixes_advertised = n);
    }

    /// Prefixes without paths that no session needs any more are dropped from the RIB.
    pub(super) fn release_emptied(&mut self) {
        self.export
            .release(&mut self.rib, self.sessions.values().map(|s| &s.export));
    }

    /// What a session holds from us, with our next hop for each, sorted.
    pub(super) fn adj_rib_out(&mut self, addr: IpAddr) -> Vec<(IpNet, Option<IpAddr>)> {
        let Some(s) = self.sessions.get(&addr) else {
            return Vec::new();
        };
        let mut v: Vec<(IpNet, Option<IpAddr>)> = self
            .export
            .adj_rib_out(&self.rib, &mut self.interner, &s.export)
            .into_iter()
            .map(|(prefix, a)| (prefix, a.and_then(|a| a.next_hop).map(|h| h.addr())))
            .collect();
        v.sort();
        v
    }
}
