//! Import: a peer's UPDATE into the RIB. A path through our own AS is a loop
//! (RFC 4271 §9.1.2), LOCAL_PREF from an external peer is ignored (§5.1.5), the import
//! policy runs once per attribute set and family unless it looks at prefixes (a
//! rejected route is as if withdrawn), and the max-prefix limit is checked after.

use bgp::policy::{self, MaxPrefixDecision, RouteContext, Verdict};

use super::*;

impl Table {
    pub(super) fn update(&mut self, addr: IpAddr, update: Update) {
        let asn = self.sp.asn;
        let Some(s) = self.sessions.get_mut(&addr) else {
            return;
        };
        let (id, ebgp) = (s.id, s.ebgp());
        let mut changes = Vec::new();
        if let Some(fam) = update.is_end_of_rib() {
            s.eor.insert(fam);
            let all = s.ctx().families.iter().all(|f| s.eor.contains(f));
            // The peer's table for this family is complete: what is still stale from
            // before its restart is gone.
            if self.stale.contains_key(&addr) {
                changes.extend(self.rib.purge_stale(id, fam));
                let left = self.rib.stale_count(id) as u64;
                if left == 0 {
                    self.stale.remove(&addr);
                }
                set_status(&self.status, addr, |st| st.stale_routes = left);
            }
            set_status(&self.status, addr, |st| st.eor_received = all);
            self.apply(changes);
            return;
        }
        let mut withdrawn: Vec<Nlri> = update
            .withdrawn
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        let mut announced: Vec<(Nlri, Arc<PathAttrs>)> = Vec::new();
        let usable = !matches!(update.outcome, UpdateOutcome::TreatAsWithdraw(_));
        match &update.attrs {
            // RFC 4271 §9.1.2: a path through our own AS is a loop; it replaces
            // (withdraws) what the peer sent before and is not used.
            Some(attrs) if usable && !attrs.as_path.contains(asn) => {
                let s = self.sessions.get(&addr).expect("session");
                let by_prefix = s.import.uses_prefix();
                // The attributes as imported, once per family (and per prefix only if
                // the import policy looks at prefixes).
                let mut per_family: [Option<Option<Arc<PathAttrs>>>; 2] = [None, None];
                for (_, nlris) in &update.announced {
                    for n in nlris {
                        let v4 = n.prefix.addr().is_ipv4();
                        let slot = &mut per_family[usize::from(!v4)];
                        let imported = match slot {
                            Some(a) if !by_prefix => a.clone(),
                            _ => {
                                let mut a = attrs.clone();
                                // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is
                                // ignored.
                                if ebgp {
                                    a.local_pref = None;
                                }
                                if v4
                                    && update.classic_next_hop.is_some()
                                    && matches!(a.next_hop, Some(NextHop::V6 { .. }))
                                {
                                    a.next_hop = update.classic_next_hop.map(NextHop::V4);
                                }
                                let v = match policy::apply(
                                    &s.import,
                                    &RouteContext {
                                        prefix: n.prefix,
                                        attrs: &a,
                                        neighbor: addr,
                                        ebgp,
                                        local_as: asn,
                                        local_addr: s.local(),
                                    },
                                ) {
                                    Verdict::Accept(a) => Some(self.interner.intern(a)),
                                    Verdict::Reject => None,
                                };
                                *slot = Some(v.clone());
                                v
                            }
                        };
                        match imported {
                            // Import policy: a rejected route is as if withdrawn.
                            Some(a) => announced.push((*n, a)),
                            None => withdrawn.push(*n),
                        }
                    }
                }
            }
            _ => {
                withdrawn.extend(update.announced.iter().flat_map(|(_, n)| n.iter().copied()));
            }
        }
        changes.extend(self.rib.update(id, &announced, &withdrawn));
        self.apply(changes);
        let count = self.rib.peer_route_count(id) as u64;
        self.set_status(addr, |st| st.prefixes_received = count);
        let s = self.sessions.get_mut(&addr).expect("session");
        let mut exceeded = false;
        if let Some(mp) = s.max_prefix.as_mut() {
            match mp.on_accept(count as usize) {
                MaxPrefixDecision::Ok => {}
                MaxPrefixDecision::Warn => {
                    tracing::warn!("{addr}: {count} prefixes, over its max-prefix limit");
                }
                MaxPrefixDecision::Exceeded { restart_after } => {
                    tracing::warn!(
                        "{addr}: {count} prefixes, over its max-prefix limit: closing the session"
                    );
                    set_status(&self.status, addr, |st| {
                        st.last_error = Some(format!("max-prefix exceeded ({count} prefixes)"));
                    });
                    // RFC 4486: Cease / Maximum Number of Prefixes Reached.
                    let _ = s.out.send(SessionOut::Reset {
                        cease_subcode: wire::CeaseError::MaxPrefixesReached.code(),
                        hold: restart_after.unwrap_or(Duration::from_secs(365 * 24 * 3600)),
                    });
                    exceeded = true;
                }
            }
        }
        if exceeded {
            // The peer's routes go now, in the batch of the UPDATE that crossed the
            // limit: none of them is published for the FIB, not even for a moment.
            self.peer_down(addr, false);
        }
        self.updates_since_gc += 1;
        if self.updates_since_gc >= 4096 {
            self.interner.gc();
            self.updates_since_gc = 0;
        }
    }
}
