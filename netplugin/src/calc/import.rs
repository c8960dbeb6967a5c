//! The host's import policy for learned routes, pure: which routes the speaker selected
//! may reach the kernel. Derived from the intent (what the fabric names) and from the
//! host's own prefixes as its kernel has them (which hold even when the intent is wrong).
//!
//! A learned prefix is installed when, in this order:
//! 1. it is a default route (`0.0.0.0/0`, `::/0`): only with `accept-default` on the
//!    host's `Bgp` object;
//! 2. it overlaps none of the host's own prefixes — equal to, covering or inside a
//!    prefix of the host's addresses and of the routes in its main table that are not
//!    netplugin's (connected subnets, the management network, static routes), and of its
//!    router subnet and `local-addresses` subnets;
//! 3. it is equal to or inside a prefix the intent names: a Contiv network's subnet, a
//!    host's `host-block`, a host's router subnet or `local-addresses` subnet (of any
//!    `Bgp` object).
//!
//! Anything else is rejected with its [`Rejection`], reported and never installed.

use std::collections::BTreeSet;
use std::fmt;

use ipnet::IpNet;

/// Why a learned route is kept out of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A default route, and the `Bgp` object does not ask for one.
    Default,
    /// It overlaps this prefix of the host's own.
    OwnPrefix(IpNet),
    /// No prefix of the intent holds it.
    OutsideIntent,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Default => {
                write!(
                    f,
                    "default route not accepted (set accept-default on the Bgp object)"
                )
            }
            Rejection::OwnPrefix(p) => write!(f, "overlaps the host's own prefix {p}"),
            Rejection::OutsideIntent => write!(
                f,
                "outside the fabric's intent (network subnets, host blocks, router subnets)"
            ),
        }
    }
}

/// The import policy of learned routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportFilter {
    /// Prefixes the intent names (see the module's rule 3).
    pub allowed: BTreeSet<IpNet>,
    /// The host's own prefixes from intent (router subnet, `local-addresses`).
    pub own_intent: BTreeSet<IpNet>,
    /// The host's own prefixes read from its kernel.
    pub own_kernel: BTreeSet<IpNet>,
    pub accept_default: bool,
}

fn is_default(p: &IpNet) -> bool {
    p.prefix_len() == 0
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

impl ImportFilter {
    /// Whether a learned prefix may be installed, and why not.
    pub fn check(&self, p: IpNet) -> Result<(), Rejection> {
        if is_default(&p) {
            return if self.accept_default {
                Ok(())
            } else {
                Err(Rejection::Default)
            };
        }
        if let Some(own) = self
            .own_intent
            .iter()
            .chain(&self.own_kernel)
            .find(|o| overlaps(&p, o))
        {
            return Err(Rejection::OwnPrefix(*own));
        }
        if self.allowed.iter().any(|a| a.contains(&p)) {
            Ok(())
        } else {
            Err(Rejection::OutsideIntent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn filter() -> ImportFilter {
        ImportFilter {
            allowed: ["20.1.1.0/24", "10.1.1.0/31", "10.1.2.0/31", "30.0.0.0/26"]
                .map(net)
                .into(),
            own_intent: ["10.1.1.0/31"].map(net).into(),
            own_kernel: ["10.1.1.0/31", "192.168.77.0/24", "127.0.0.0/8"]
                .map(net)
                .into(),
            accept_default: false,
        }
    }

    #[test]
    fn what_the_intent_names_is_accepted() {
        let f = filter();
        for p in [
            "20.1.1.7/32",
            "20.1.1.0/24",
            "10.1.2.0/31",
            "30.0.0.0/26",
            "30.0.0.9/32",
        ] {
            assert_eq!(f.check(net(p)), Ok(()), "{p}");
        }
    }

    #[test]
    fn the_attacks_are_rejected() {
        let f = filter();
        assert_eq!(f.check(net("0.0.0.0/0")), Err(Rejection::Default));
        // Equal to, covering and inside the management network.
        let mgmt = Err(Rejection::OwnPrefix(net("192.168.77.0/24")));
        assert_eq!(f.check(net("192.168.77.0/24")), mgmt);
        assert_eq!(f.check(net("192.168.0.0/16")), mgmt);
        assert_eq!(f.check(net("192.168.77.1/32")), mgmt);
        // Covering the router link, even though the intent names a part of it.
        assert_eq!(
            f.check(net("10.1.0.0/16")),
            Err(Rejection::OwnPrefix(net("10.1.1.0/31")))
        );
        assert_eq!(
            f.check(net("10.1.1.0/31")),
            Err(Rejection::OwnPrefix(net("10.1.1.0/31")))
        );
        // Wider than a network's subnet, or elsewhere.
        assert_eq!(f.check(net("20.1.0.0/16")), Err(Rejection::OutsideIntent));
        assert_eq!(f.check(net("99.99.0.0/16")), Err(Rejection::OutsideIntent));
        assert_eq!(f.check(net("10.255.0.1/32")), Err(Rejection::OutsideIntent));
    }

    #[test]
    fn a_default_only_when_asked_for() {
        let mut f = filter();
        f.accept_default = true;
        assert_eq!(f.check(net("0.0.0.0/0")), Ok(()));
        // The kernel's own prefixes hold even when the intent names them.
        f.allowed.insert(net("192.168.77.0/24"));
        assert!(f.check(net("192.168.77.0/24")).is_err());
    }
}
