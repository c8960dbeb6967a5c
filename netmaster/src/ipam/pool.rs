//! [`Pool`]: the addresses of one network subnet, with endpoint-group sub-pools.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::range::{from_u128, to_u128};
use super::space::{DENSE_MAX_LEN, Space};
use super::{AddrRange, IpamError, ReservedKind, SubnetSpec, format_runs};

/// Who an allocation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope<'a> {
    /// The network itself: endpoints of the bare network or of an endpoint group without an
    /// ip pool, and service VIPs. Never gets an address inside an endpoint group's pool.
    Network,
    /// An endpoint group with an ip pool in this network: only addresses of that pool.
    Epg(&'a str),
}

/// Address counts of one scope (or of the whole network, see [`Pool::counts_all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Addresses that can be handed out (reserved addresses excluded).
    pub total: u128,
    /// Addresses handed out.
    pub used: u128,
    /// `total - used`.
    pub free: u128,
}

impl Counts {
    /// `used / total` in `0.0..=1.0` (0 for an empty scope).
    pub fn utilisation(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used as f64 / self.total as f64
        }
    }
}

/// The ip pool of one endpoint group: a range carved out of the network's range.
#[derive(Debug, Clone)]
pub(crate) struct EpgPool {
    pub(crate) range: AddrRange,
    pub(crate) lo: u128,
    pub(crate) hi: u128,
    /// Allocated addresses, as offsets from `lo`.
    pub(crate) space: Space,
}

/// The address allocator of one network subnet (one family; a dual-stack network has two).
///
/// Pure: no I/O, no clock. Allocation is first-fit (the lowest free address). The network
/// address and broadcast address (IPv4 subnets up to /30), the subnet-router anycast address
/// (IPv6 subnets up to /126) and the gateway are never handed out. With a `start-end/len`
/// subnet only addresses from `start` to `end` are handed out.
///
/// Endpoint-group pools are carved out of the network range: while a group has a pool, the
/// network scope skips it and the group allocates only from it. A service network's VIPs are
/// simply network-scope allocations ([`Pool::allocate_with`] with the preferred VIP).
///
/// Preferred addresses are not idempotent: allocating an address that is already allocated
/// is an error ([`IpamError::AlreadyAllocated`]); callers that replay requests (Docker's
/// RequestAddress followed by CreateEndpoint) must remember which endpoint owns an address.
///
/// IPv4 ranges up to 2^24 addresses use a dense bitmap (2 MiB for a /8); larger IPv4 ranges
/// and all IPv6 ranges use a set of merged runs whose size depends on the fragmentation of
/// the allocations, not on the size of the space, so a /64 costs nothing until used.
#[derive(Debug, Clone)]
pub struct Pool {
    pub(crate) network: String,
    pub(crate) spec: SubnetSpec,
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) v6: bool,
    /// The allocatable range, as numbers.
    pub(crate) lo: u128,
    pub(crate) hi: u128,
    /// Every reserved address of the subnet (inside the range or not), sorted.
    reserved: Vec<(u128, ReservedKind)>,
    /// Offsets from `lo` that the network scope cannot hand out: reserved addresses in the
    /// range, endpoint-group pools and the network scope's own allocations.
    pub(crate) space: Space,
    /// Number of network-scope allocations.
    allocated: u128,
    pub(crate) epgs: BTreeMap<String, EpgPool>,
}

pub(crate) fn new_space(v6: bool, len: u128) -> Space {
    if !v6 && len <= DENSE_MAX_LEN {
        Space::dense(len)
    } else {
        Space::sparse(len - 1)
    }
}

/// `runs` minus `holes`; both sorted and disjoint.
fn subtract(runs: &[(u128, u128)], holes: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut h = 0;
    for &(mut s, e) in runs {
        while h < holes.len() && holes[h].1 < s {
            h += 1;
        }
        let mut k = h;
        let mut done = false;
        while k < holes.len() && holes[k].0 <= e {
            let (hs, he) = holes[k];
            if hs > s {
                out.push((s, hs - 1));
            }
            if he >= e {
                done = true;
                break;
            }
            s = s.max(he + 1);
            k += 1;
        }
        if !done {
            out.push((s, e));
        }
    }
    out
}

/// The gaps of sorted disjoint `runs` inside `0..=last`.
fn complement(runs: &[(u128, u128)], last: u128) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut next = Some(0u128);
    for &(s, e) in runs {
        if let Some(n) = next
            && s > n
        {
            out.push((n, s - 1));
        }
        next = e.checked_add(1);
    }
    if let Some(n) = next
        && n <= last
    {
        out.push((n, last));
    }
    out
}

fn shift(runs: &[(u128, u128)], by: u128) -> Vec<(u128, u128)> {
    runs.iter().map(|&(s, e)| (s + by, e + by)).collect()
}

impl Pool {
    /// A pool for `network` (its name, used in error messages) over `spec`, with an optional
    /// gateway that must be an address of the subnet other than the network, broadcast or
    /// subnet-router anycast address.
    pub fn new(
        network: impl Into<String>,
        spec: SubnetSpec,
        gateway: Option<IpAddr>,
    ) -> Result<Self, IpamError> {
        let network = network.into();
        let subnet = spec.subnet();
        let v6 = matches!(subnet, IpNet::V6(_));
        let mut reserved = Vec::new();
        let plen = subnet.prefix_len();
        if !v6 && plen <= 30 {
            reserved.push((to_u128(subnet.network()), ReservedKind::NetworkAddress));
            reserved.push((to_u128(subnet.broadcast()), ReservedKind::BroadcastAddress));
        }
        if v6 && plen <= 126 {
            reserved.push((to_u128(subnet.network()), ReservedKind::SubnetRouterAnycast));
        }
        if let Some(gw) = gateway {
            if !subnet.contains(&gw) {
                return Err(IpamError::GatewayNotInSubnet {
                    network,
                    subnet: subnet.to_string(),
                    gateway: gw,
                });
            }
            if let Some(&(_, kind)) = reserved.iter().find(|&&(a, _)| a == to_u128(gw)) {
                return Err(IpamError::GatewayReserved {
                    network,
                    subnet: subnet.to_string(),
                    gateway: gw,
                    kind,
                });
            }
            reserved.push((to_u128(gw), ReservedKind::Gateway));
        }
        reserved.sort_unstable_by_key(|&(a, _)| a);
        let (lo, hi) = spec.range().bounds();
        let mut space = new_space(v6, hi - lo + 1);
        for &(a, _) in &reserved {
            if (lo..=hi).contains(&a) {
                space.insert(a - lo);
            }
        }
        Ok(Pool {
            network,
            spec,
            gateway,
            v6,
            lo,
            hi,
            reserved,
            space,
            allocated: 0,
            epgs: BTreeMap::new(),
        })
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn spec(&self) -> &SubnetSpec {
        &self.spec
    }

    pub fn subnet(&self) -> IpNet {
        self.spec.subnet()
    }

    /// The allocatable range (the sub-range of a `start-end/len` spec, else the subnet).
    pub fn range(&self) -> AddrRange {
        self.spec.range()
    }

    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// The reserved addresses of the subnet, lowest first.
    pub fn reserved(&self) -> Vec<(IpAddr, ReservedKind)> {
        self.reserved
            .iter()
            .map(|&(a, k)| (from_u128(self.v6, a), k))
            .collect()
    }

    /// Why `addr` is reserved, if it is.
    pub fn reserved_kind(&self, addr: IpAddr) -> Option<ReservedKind> {
        if addr.is_ipv6() != self.v6 {
            return None;
        }
        self.reserved_kind_of(to_u128(addr))
    }

    fn reserved_kind_of(&self, v: u128) -> Option<ReservedKind> {
        self.reserved
            .iter()
            .find(|&&(a, _)| a == v)
            .map(|&(_, k)| k)
    }

    /// The endpoint group whose pool contains `addr`, if any.
    pub fn epg_of(&self, addr: IpAddr) -> Option<&str> {
        if addr.is_ipv6() != self.v6 {
            return None;
        }
        self.epg_containing(to_u128(addr)).map(|(g, _)| g.as_str())
    }

    fn epg_containing(&self, v: u128) -> Option<(&String, &EpgPool)> {
        self.epgs.iter().find(|(_, p)| (p.lo..=p.hi).contains(&v))
    }

    fn epg(&self, group: &str) -> Result<&EpgPool, IpamError> {
        self.epgs.get(group).ok_or_else(|| IpamError::UnknownEpg {
            network: self.network.clone(),
            group: group.to_string(),
        })
    }

    fn epg_mut(&mut self, group: &str) -> Result<&mut EpgPool, IpamError> {
        let network = &self.network;
        self.epgs
            .get_mut(group)
            .ok_or_else(|| IpamError::UnknownEpg {
                network: network.clone(),
                group: group.to_string(),
            })
    }

    fn group_name(scope: Scope<'_>) -> Option<String> {
        match scope {
            Scope::Network => None,
            Scope::Epg(g) => Some(g.to_string()),
        }
    }

    /// The number of `addr` if it is in the subnet, else [`IpamError::NotInSubnet`].
    fn in_subnet(&self, addr: IpAddr) -> Result<u128, IpamError> {
        if addr.is_ipv6() == self.v6 && self.spec.subnet().contains(&addr) {
            Ok(to_u128(addr))
        } else {
            Err(IpamError::NotInSubnet {
                network: self.network.clone(),
                subnet: self.spec.subnet().to_string(),
                addr,
            })
        }
    }

    /// Checks that the network scope may own `addr`; returns its offset in the network space.
    fn network_offset(&self, addr: IpAddr) -> Result<u128, IpamError> {
        let v = self.in_subnet(addr)?;
        if !(self.lo..=self.hi).contains(&v) {
            return Err(IpamError::NotInRange {
                network: self.network.clone(),
                range: self.range().to_string(),
                addr,
            });
        }
        if let Some(kind) = self.reserved_kind_of(v) {
            return Err(IpamError::Reserved {
                network: self.network.clone(),
                addr,
                kind,
            });
        }
        if let Some((g, p)) = self.epg_containing(v) {
            return Err(IpamError::InEpgPool {
                network: self.network.clone(),
                group: g.clone(),
                pool: p.range.to_string(),
                addr,
            });
        }
        Ok(v - self.lo)
    }

    /// Checks that `group` exists and may own `addr`; returns its offset in the group's space.
    fn epg_offset(&self, group: &str, addr: IpAddr) -> Result<u128, IpamError> {
        let pool = self.epg(group)?;
        let v = self.in_subnet(addr)?;
        if !(pool.lo..=pool.hi).contains(&v) {
            return Err(IpamError::NotInEpgPool {
                network: self.network.clone(),
                group: group.to_string(),
                pool: pool.range.to_string(),
                addr,
            });
        }
        Ok(v - pool.lo)
    }

    /// Allocates the lowest free address of the scope.
    ///
    /// Errors: [`IpamError::UnknownEpg`], [`IpamError::Exhausted`].
    pub fn allocate(&mut self, scope: Scope<'_>) -> Result<IpAddr, IpamError> {
        let found = match scope {
            Scope::Network => {
                let off = self.space.first_free();
                if let Some(off) = off {
                    self.space.insert(off);
                    self.allocated += 1;
                }
                off.map(|o| self.lo + o)
            }
            Scope::Epg(g) => {
                let p = self.epg_mut(g)?;
                let off = p.space.first_free();
                if let Some(off) = off {
                    p.space.insert(off);
                }
                off.map(|o| p.lo + o)
            }
        };
        match found {
            Some(v) => Ok(from_u128(self.v6, v)),
            None => Err(IpamError::Exhausted {
                network: self.network.clone(),
                group: Self::group_name(scope),
            }),
        }
    }

    /// Allocates `addr` for the scope.
    ///
    /// Errors, checked in this order. Network scope: [`IpamError::NotInSubnet`],
    /// [`IpamError::NotInRange`], [`IpamError::Reserved`], [`IpamError::InEpgPool`],
    /// [`IpamError::AlreadyAllocated`]. Group scope: [`IpamError::UnknownEpg`],
    /// [`IpamError::NotInSubnet`], [`IpamError::NotInEpgPool`], [`IpamError::AlreadyAllocated`].
    pub fn allocate_preferred(&mut self, scope: Scope<'_>, addr: IpAddr) -> Result<(), IpamError> {
        let inserted = match scope {
            Scope::Network => {
                let off = self.network_offset(addr)?;
                let new = self.space.insert(off);
                if new {
                    self.allocated += 1;
                }
                new
            }
            Scope::Epg(g) => {
                let off = self.epg_offset(g, addr)?;
                self.epg_mut(g)?.space.insert(off)
            }
        };
        if inserted {
            Ok(())
        } else {
            Err(IpamError::AlreadyAllocated {
                network: self.network.clone(),
                group: Self::group_name(scope),
                addr,
            })
        }
    }

    /// Allocates `preferred` if given, else the lowest free address (service VIPs, endpoints
    /// with a requested address).
    pub fn allocate_with(
        &mut self,
        scope: Scope<'_>,
        preferred: Option<IpAddr>,
    ) -> Result<IpAddr, IpamError> {
        match preferred {
            Some(a) => self.allocate_preferred(scope, a).map(|()| a),
            None => self.allocate(scope),
        }
    }

    /// Returns `addr` to the scope.
    ///
    /// Errors: as [`Pool::allocate_preferred`], with [`IpamError::NotAllocated`] in place of
    /// `AlreadyAllocated` (double release, or an address that was never allocated).
    pub fn release(&mut self, scope: Scope<'_>, addr: IpAddr) -> Result<(), IpamError> {
        let removed = match scope {
            Scope::Network => {
                let off = self.network_offset(addr)?;
                let removed = self.space.remove(off);
                if removed {
                    self.allocated -= 1;
                }
                removed
            }
            Scope::Epg(g) => {
                let off = self.epg_offset(g, addr)?;
                self.epg_mut(g)?.space.remove(off)
            }
        };
        if removed {
            Ok(())
        } else {
            Err(IpamError::NotAllocated {
                network: self.network.clone(),
                group: Self::group_name(scope),
                addr,
            })
        }
    }

    /// Whether `addr` is allocated, in the network scope or in any group's pool.
    pub fn is_allocated(&self, addr: IpAddr) -> bool {
        if addr.is_ipv6() != self.v6 {
            return false;
        }
        let v = to_u128(addr);
        if !(self.lo..=self.hi).contains(&v) || self.reserved_kind_of(v).is_some() {
            return false;
        }
        match self.epg_containing(v) {
            Some((_, p)) => p.space.contains(v - p.lo),
            None => self.space.contains(v - self.lo),
        }
    }

    /// Carves the ip pool `range` out of the network for `group`.
    ///
    /// Errors, checked in this order: [`IpamError::EpgPoolExists`],
    /// [`IpamError::EpgPoolOutside`] (not inside the allocatable range, or the other family),
    /// [`IpamError::EpgPoolOverlap`] (names the overlapping pool with the lowest start),
    /// then for the lowest address of the range that is not free in the network scope
    /// [`IpamError::EpgPoolReserved`] or [`IpamError::EpgPoolAllocated`].
    pub fn add_epg_pool(&mut self, group: &str, range: AddrRange) -> Result<(), IpamError> {
        if let Some(p) = self.epgs.get(group) {
            return Err(IpamError::EpgPoolExists {
                network: self.network.clone(),
                group: group.to_string(),
                pool: p.range.to_string(),
            });
        }
        let (a, b) = range.bounds();
        if range.is_ipv6() != self.v6 || a < self.lo || b > self.hi {
            return Err(IpamError::EpgPoolOutside {
                network: self.network.clone(),
                group: group.to_string(),
                pool: range.to_string(),
                range: self.range().to_string(),
            });
        }
        if let Some((other, p)) = self
            .epgs
            .iter()
            .filter(|(_, p)| p.lo <= b && a <= p.hi)
            .min_by_key(|(_, p)| p.lo)
        {
            return Err(IpamError::EpgPoolOverlap {
                group: group.to_string(),
                pool: range.to_string(),
                other: other.clone(),
                other_pool: p.range.to_string(),
            });
        }
        if let Some(off) = self.space.first_set_in(a - self.lo, b - self.lo) {
            let v = self.lo + off;
            let addr = from_u128(self.v6, v);
            return Err(match self.reserved_kind_of(v) {
                Some(kind) => IpamError::EpgPoolReserved {
                    network: self.network.clone(),
                    group: group.to_string(),
                    pool: range.to_string(),
                    addr,
                    kind,
                },
                None => IpamError::EpgPoolAllocated {
                    network: self.network.clone(),
                    group: group.to_string(),
                    pool: range.to_string(),
                    addr,
                },
            });
        }
        self.space.insert_range(a - self.lo, b - self.lo);
        self.epgs.insert(
            group.to_string(),
            EpgPool {
                range,
                lo: a,
                hi: b,
                space: new_space(self.v6, b - a + 1),
            },
        );
        Ok(())
    }

    /// Gives `group`'s pool back to the network and returns its range.
    ///
    /// Errors: [`IpamError::UnknownEpg`]; [`IpamError::EpgPoolInUse`] while any address of
    /// the pool is allocated.
    pub fn remove_epg_pool(&mut self, group: &str) -> Result<AddrRange, IpamError> {
        let p = self.epg(group)?;
        let count = p.space.count();
        if count > 0 {
            return Err(IpamError::EpgPoolInUse {
                network: self.network.clone(),
                group: group.to_string(),
                pool: p.range.to_string(),
                count,
            });
        }
        let (a, b, range) = (p.lo, p.hi, p.range);
        self.space.remove_range(a - self.lo, b - self.lo);
        self.epgs.remove(group);
        Ok(range)
    }

    /// The ip pool of `group`, if it has one here.
    pub fn epg_pool(&self, group: &str) -> Option<AddrRange> {
        self.epgs.get(group).map(|p| p.range)
    }

    /// Every endpoint-group pool, by group name.
    pub fn epg_pools(&self) -> impl Iterator<Item = (&str, AddrRange)> {
        self.epgs.iter().map(|(g, p)| (g.as_str(), p.range))
    }

    /// Counts of one scope. The network scope's total excludes reserved addresses and the
    /// addresses of every group pool.
    pub fn counts(&self, scope: Scope<'_>) -> Result<Counts, IpamError> {
        Ok(match scope {
            Scope::Network => {
                let free = (self.hi - self.lo + 1) - self.space.count();
                Counts {
                    total: self.allocated + free,
                    used: self.allocated,
                    free,
                }
            }
            Scope::Epg(g) => {
                let p = self.epg(g)?;
                let total = p.hi - p.lo + 1;
                let used = p.space.count();
                Counts {
                    total,
                    used,
                    free: total - used,
                }
            }
        })
    }

    /// Counts of the whole network: the network scope and every group pool together.
    pub fn counts_all(&self) -> Counts {
        let reserved = self
            .reserved
            .iter()
            .filter(|&&(a, _)| (self.lo..=self.hi).contains(&a))
            .count() as u128;
        let total = (self.hi - self.lo + 1) - reserved;
        let used = self.allocated + self.epgs.values().map(|p| p.space.count()).sum::<u128>();
        Counts {
            total,
            used,
            free: total - used,
        }
    }

    /// `used / total` of one scope.
    pub fn utilisation(&self, scope: Scope<'_>) -> Result<f64, IpamError> {
        self.counts(scope).map(|c| c.utilisation())
    }

    /// Network-scope allocations as sorted runs of addresses (as numbers).
    pub(crate) fn network_runs(&self) -> Vec<(u128, u128)> {
        let mut holes: Vec<(u128, u128)> = self
            .reserved
            .iter()
            .filter(|&&(a, _)| (self.lo..=self.hi).contains(&a))
            .map(|&(a, _)| (a - self.lo, a - self.lo))
            .collect();
        holes.extend(self.epgs.values().map(|p| (p.lo - self.lo, p.hi - self.lo)));
        holes.sort_unstable();
        shift(&subtract(&self.space.runs(), &holes), self.lo)
    }

    /// Allocations of the scope as runs of addresses (as numbers).
    pub(crate) fn allocated_runs(&self, scope: Scope<'_>) -> Result<Vec<(u128, u128)>, IpamError> {
        match scope {
            Scope::Network => Ok(self.network_runs()),
            Scope::Epg(g) => {
                let p = self.epg(g)?;
                Ok(shift(&p.space.runs(), p.lo))
            }
        }
    }

    /// Contiv's `allocatedIPAddresses` for one scope: `"10.1.1.1-10.1.1.5, 10.1.1.9"`.
    pub fn allocated_addresses(&self, scope: Scope<'_>) -> Result<String, IpamError> {
        Ok(format_runs(self.v6, &self.allocated_runs(scope)?, ", "))
    }

    /// Contiv's `availableIPAddresses` for one scope: the addresses the scope could still
    /// hand out, in the same format.
    pub fn available_addresses(&self, scope: Scope<'_>) -> Result<String, IpamError> {
        let (space, base) = match scope {
            Scope::Network => (&self.space, self.lo),
            Scope::Epg(g) => {
                let p = self.epg(g)?;
                (&p.space, p.lo)
            }
        };
        let free = shift(&complement(&space.runs(), space.last()), base);
        Ok(format_runs(self.v6, &free, ", "))
    }

    /// Every allocated address of the network (network scope and all group pools), in the
    /// same format.
    pub fn allocated_addresses_all(&self) -> String {
        let mut runs = self.network_runs();
        for p in self.epgs.values() {
            runs.extend(shift(&p.space.runs(), p.lo));
        }
        runs.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(runs.len());
        for (s, e) in runs {
            match merged.last_mut() {
                Some(m) if m.1.checked_add(1) == Some(s) => m.1 = e,
                _ => merged.push((s, e)),
            }
        }
        format_runs(self.v6, &merged, ", ")
    }

    /// Marks the run `a..=b` (numbers) as allocated in the scope, all at once; every address
    /// must be allowed and free. Used to rebuild a pool from its state.
    pub(crate) fn mark_run(&mut self, scope: Scope<'_>, a: u128, b: u128) -> Result<(), String> {
        let v6 = self.v6;
        let show = |v: u128| from_u128(v6, v);
        match scope {
            Scope::Network => {
                if a < self.lo || b > self.hi {
                    return Err(format!(
                        "allocation {}-{} is outside the range {}",
                        show(a),
                        show(b),
                        self.range()
                    ));
                }
                if let Some(off) = self.space.first_set_in(a - self.lo, b - self.lo) {
                    let v = self.lo + off;
                    let why = if let Some(kind) = self.reserved_kind_of(v) {
                        format!("the {kind}")
                    } else if let Some((g, _)) = self.epg_containing(v) {
                        format!("in the ip pool of endpoint group {g:?}")
                    } else {
                        "allocated twice".to_string()
                    };
                    return Err(format!("network allocation {} is {why}", show(v)));
                }
                self.space.insert_range(a - self.lo, b - self.lo);
                self.allocated += b - a + 1;
            }
            Scope::Epg(g) => {
                let p = self
                    .epgs
                    .get_mut(g)
                    .ok_or_else(|| format!("endpoint group {g:?} has no ip pool"))?;
                if a < p.lo || b > p.hi {
                    return Err(format!(
                        "allocation {}-{} of endpoint group {g:?} is outside its ip pool {}",
                        show(a),
                        show(b),
                        p.range
                    ));
                }
                if let Some(off) = p.space.first_set_in(a - p.lo, b - p.lo) {
                    return Err(format!(
                        "allocation {} of endpoint group {g:?} is listed twice",
                        show(p.lo + off)
                    ));
                }
                p.space.insert_range(a - p.lo, b - p.lo);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_and_complement() {
        assert_eq!(
            subtract(&[(0, 10), (20, 30)], &[(0, 0), (5, 6), (10, 21), (30, 30)]),
            vec![(1, 4), (7, 9), (22, 29)]
        );
        assert_eq!(subtract(&[(3, 3)], &[(3, 3)]), vec![]);
        assert_eq!(subtract(&[(3, 9)], &[]), vec![(3, 9)]);
        assert_eq!(complement(&[(0, 2), (5, 5)], 9), vec![(3, 4), (6, 9)]);
        assert_eq!(complement(&[], 9), vec![(0, 9)]);
        assert_eq!(complement(&[(0, 9)], 9), vec![]);
        assert_eq!(complement(&[(0, u128::MAX)], u128::MAX), vec![]);
    }
}
