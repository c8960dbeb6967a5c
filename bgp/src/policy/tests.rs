use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;
use crate::types::AsPath;

fn attrs(path: &[u32], comms: &[&str]) -> PathAttrs {
    PathAttrs {
        as_path: AsPath::from_sequence(path.iter().copied()),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        communities: comms.iter().map(|c| c.parse().unwrap()).collect(),
        ..PathAttrs::default()
    }
}

fn ctx<'a>(prefix: &str, attrs: &'a PathAttrs) -> RouteContext<'a> {
    RouteContext {
        prefix: prefix.parse().unwrap(),
        attrs,
        neighbor: "192.0.2.1".parse().unwrap(),
        ebgp: true,
        local_as: 65001,
        local_addr: "192.0.2.2".parse().unwrap(),
    }
}

fn policies(text: &str) -> Policies {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn prefix_entries_parse() {
    let ok = [
        ("10.0.0.0/8", "10.0.0.0/8", 8, 8),
        ("10.0.0.0/8 le 24", "10.0.0.0/8 ge 8 le 24", 8, 24),
        ("10.0.0.0/8 ge 24", "10.0.0.0/8 ge 24 le 32", 24, 32),
        ("10.0.0.0/8  le 32 ge 24", "10.0.0.0/8 ge 24 le 32", 24, 32),
        ("0.0.0.0/0 le 32", "0.0.0.0/0 ge 0 le 32", 0, 32),
        ("fd00::/8 ge 64", "fd00::/8 ge 64 le 128", 64, 128),
        ("10.0.0.0/8 ge 8 le 8", "10.0.0.0/8", 8, 8),
    ];
    for (text, shown, ge, le) in ok {
        let e: PrefixEntry = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (e.to_string().as_str(), e.ge, e.le),
            (shown, ge, le),
            "{text}"
        );
    }
    let bad = [
        ("", "empty"),
        ("10.0.0.0", "is not a prefix"),
        ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
        (
            "10.0.0.0/8 ge 4",
            "ge 4 is shorter than the prefix length 8",
        ),
        ("10.0.0.0/8 le 33", "le 33 is longer than 32"),
        ("fd00::/8 ge 129", "le 128"),
        ("10.0.0.0/8 ge 28 le 24", "ge 28 is greater than le 24"),
        ("10.0.0.0/8 ge 24 ge 25", "`ge` given twice"),
        ("10.0.0.0/8 ge", "`ge` needs a prefix length"),
        ("10.0.0.0/8 eq 24", "expected `ge N` or `le N`"),
    ];
    for (text, why) in bad {
        let err = text.parse::<PrefixEntry>().unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn prefix_entries_match() {
    let table = [
        ("10.0.0.0/8", "10.0.0.0/8", true),
        ("10.0.0.0/8", "10.1.0.0/16", false),
        ("10.0.0.0/8 le 16", "10.1.0.0/16", true),
        ("10.0.0.0/8 le 16", "10.1.1.0/24", false),
        ("10.0.0.0/8 ge 24 le 32", "10.1.1.0/24", true),
        ("10.0.0.0/8 ge 24 le 32", "10.1.1.1/32", true),
        ("10.0.0.0/8 ge 24 le 32", "10.1.0.0/16", false),
        ("10.0.0.0/8 ge 24 le 32", "11.1.1.0/24", false),
        ("0.0.0.0/0 le 32", "::/0", false),
        ("fd00::/8 ge 64", "fd12:3::/64", true),
        ("fd00::/8 ge 64", "fe80::/64", false),
        ("::/0", "0.0.0.0/0", false),
    ];
    for (entry, prefix, want) in table {
        let e: PrefixEntry = entry.parse().unwrap();
        assert_eq!(
            e.matches(&prefix.parse().unwrap()),
            want,
            "{entry} vs {prefix}"
        );
    }
}

#[test]
fn as_path_patterns() {
    let table: &[(&str, &[u32], bool)] = &[
        ("65001", &[65001], true),
        ("65001", &[1, 65001, 2], true),
        ("^65001", &[1, 65001], false),
        ("^65001", &[65001, 1], true),
        ("65001$", &[65001, 1], false),
        ("^65001$", &[65001], true),
        ("^$", &[], true),
        ("^$", &[1], false),
        ("", &[], true),
        ("^65001 .* 65100$", &[65001, 65100], true),
        ("^65001 .* 65100$", &[65001, 3, 4, 65100], true),
        ("^65001 .* 65100$", &[65001, 3, 4, 65101], false),
        ("^65001 . 65100$", &[65001, 65100], false),
        ("^65001 . 65100$", &[65001, 7, 65100], true),
        ("^. . .$", &[1, 2, 3], true),
        ("^. . .$", &[1, 2], false),
        ("64512-65534", &[1, 64600, 2], true),
        ("^64512-65534$", &[64511], false),
        ("^.* 100 100$", &[100, 100, 100], true),
    ];
    for (pat, path, want) in table {
        let p: AsPathPattern = pat.parse().unwrap();
        let got = p.matches(&AsPath::from_sequence(path.iter().copied()));
        assert_eq!(got, *want, "{pat:?} vs {path:?}");
    }
    for (bad, why) in [
        ("^65001 x", "\"x\" is not an AS number"),
        ("5-1", "is empty"),
    ] {
        let err = bad.parse::<AsPathPattern>().unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn as_path_and_community_conditions() {
    let p = policies(
        r#"
        [t]
        default = "reject"
        [[t.terms]]
        match.as_path = { first = [65000], origin = [65100, 65200], min_len = 2, max_len = 3 }
        match.community = { any = ["65000:1", "65000:2"], none = ["no-export"] }
        then = "accept"
        "#,
    );
    let p = &p["t"];
    let table: &[(&[u32], &[&str], bool)] = &[
        (&[65000, 65100], &["65000:1"], true),
        (&[65000, 7, 65200], &["65000:2", "1:1"], true),
        (&[65000, 7, 8, 65200], &["65000:2"], false), // too long
        (&[65000], &["65000:1"], false),              // too short, origin 65000
        (&[65001, 65100], &["65000:1"], false),       // other first AS
        (&[65000, 65100], &["1:1"], false),           // none of any-of
        (&[65000, 65100], &["65000:1", "no-export"], false),
    ];
    for (path, comms, want) in table {
        let a = attrs(path, comms);
        let got = apply(p, &ctx("10.0.0.0/24", &a)) != Verdict::Reject;
        assert_eq!(got, *want, "{path:?} {comms:?}");
    }
    let all: SetMatch<LargeCommunity> = SetMatch {
        all: vec!["1:2:3".parse().unwrap(), "1:2:4".parse().unwrap()],
        ..SetMatch::default()
    };
    let l = |s: &str| s.parse::<LargeCommunity>().unwrap();
    assert!(all.matches(&[l("1:2:3"), l("1:2:4"), l("9:9:9")]));
    assert!(!all.matches(&[l("1:2:3")]));
}

#[test]
fn next_hop_neighbor_and_ebgp_conditions() {
    let p = policies(
        r#"
        [t]
        default = "reject"
        [[t.terms]]
        match = { next_hop = ["192.0.2.0/28"], neighbor = ["192.0.2.1", "2001:db8::/32"], ebgp = true }
        then = "accept"
        "#,
    );
    let p = &p["t"];
    let a = attrs(&[1], &[]);
    let mut c = ctx("10.0.0.0/24", &a);
    assert!(matches!(apply(p, &c), Verdict::Accept(_)));
    c.ebgp = false;
    assert_eq!(apply(p, &c), Verdict::Reject);
    c.ebgp = true;
    c.neighbor = "192.0.2.9".parse().unwrap();
    assert_eq!(apply(p, &c), Verdict::Reject);
    c.neighbor = "2001:db8::5".parse().unwrap();
    assert!(matches!(apply(p, &c), Verdict::Accept(_)));
    let far = PathAttrs {
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 200))),
        ..a.clone()
    };
    assert_eq!(
        apply(p, &RouteContext { attrs: &far, ..c }),
        Verdict::Reject
    );
    let none = PathAttrs {
        next_hop: None,
        ..a.clone()
    };
    assert_eq!(
        apply(p, &RouteContext { attrs: &none, ..c }),
        Verdict::Reject
    );
}

const TOR_POLICY: &str = r#"
[from-tor]
default = "reject"

[[from-tor.terms]]
name = "drop-blackholed"
match.community = { any = ["blackhole"] }
then = "reject"

[[from-tor.terms]]
name = "tag-everything"
actions = { add_community = ["65001:1"], remove_community = ["65000:99"], add_large_community = ["65001:0:1"] }
then = "continue"

[[from-tor.terms]]
name = "pods"
match.prefix = ["10.0.0.0/8 ge 24 le 32", "fd00::/8 ge 64"]
actions = { local_pref = 200, med = 5, next_hop = "self", prepend = 2 }
then = "accept"

[[from-tor.terms]]
name = "tagged-default"
match = { prefix = ["0.0.0.0/0"], community = { all = ["65001:1"] } }
actions = { set_community = [], next_hop = "198.51.100.1" }
then = "accept"
"#;

#[test]
fn terms_in_order_with_continue() {
    let ps = policies(TOR_POLICY);
    let p = &ps["from-tor"];
    let a = attrs(&[65000], &["65000:99", "65000:7"]);

    let Verdict::Accept(got) = apply(p, &ctx("10.1.2.0/24", &a)) else {
        panic!("pods rejected")
    };
    let c = |s: &str| s.parse::<Community>().unwrap();
    assert_eq!(got.communities, vec![c("65000:7"), c("65001:1")]);
    assert_eq!(got.large_communities, vec!["65001:0:1".parse().unwrap()]);
    assert_eq!((got.local_pref, got.med), (Some(200), Some(5)));
    assert_eq!(got.next_hop, Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 2))));
    assert_eq!(got.as_path.to_string(), "65001 65001 65000");

    // The default route is matched on the community the continue term added.
    let Verdict::Accept(got) = apply(p, &ctx("0.0.0.0/0", &a)) else {
        panic!("default rejected")
    };
    assert!(got.communities.is_empty());
    assert_eq!(
        got.next_hop,
        Some(NextHop::V4(Ipv4Addr::new(198, 51, 100, 1)))
    );
    assert_eq!(got.local_pref, None);

    let table = [
        ("10.1.0.0/16", &["1:1"][..], false), // no term accepts: default reject
        ("10.1.2.0/24", &["blackhole"][..], false),
        ("fd00:1::/64", &[][..], true),
        ("fd00::/8", &[][..], false),
    ];
    for (prefix, comms, want) in table {
        let a = attrs(&[65000], comms);
        let got = matches!(apply(p, &ctx(prefix, &a)), Verdict::Accept(_));
        assert_eq!(got, want, "{prefix} {comms:?}");
    }
}

#[test]
fn default_accept_keeps_changes_and_chains_compose() {
    let ps = policies(
        r#"
        [tag]
        default = "accept"
        [[tag.terms]]
        actions = { add_community = ["65001:5"], local_pref = 50 }
        then = "continue"

        [only-tagged]
        default = "reject"
        [[only-tagged.terms]]
        match.community = { all = ["65001:5"] }
        actions = { local_pref = 60 }
        then = "accept"
        "#,
    );
    let a = attrs(&[65000], &[]);
    let c = ctx("10.0.0.0/24", &a);
    let Verdict::Accept(tagged) = apply(&ps["tag"], &c) else {
        panic!()
    };
    assert_eq!(tagged.communities, vec![Community::new(65001, 5)]);
    assert_eq!(apply(&ps["only-tagged"], &c), Verdict::Reject);
    let Verdict::Accept(both) = apply_chain([&ps["tag"], &ps["only-tagged"]], &c) else {
        panic!("chain rejected")
    };
    assert_eq!(both.local_pref, Some(60));
    assert_eq!(
        apply_chain([&ps["only-tagged"], &ps["tag"]], &c),
        Verdict::Reject
    );
    assert_eq!(apply_chain([], &c), Verdict::Accept(a.clone()));
    assert_eq!(apply(&Policy::accept_all(), &c), Verdict::Accept(a.clone()));
}

#[test]
fn rfc8212_defaults() {
    let mine = Policy::accept_all();
    // (ebgp, configured, opt_out) -> accepts
    let table = [
        (true, false, false, false),
        (true, false, true, true),
        (false, false, false, true),
        (true, true, false, true),
        (false, true, true, true),
    ];
    let a = attrs(&[65000], &[]);
    for (ebgp, configured, opt_out, want) in table {
        let np = NeighborPolicy {
            import: configured.then(|| mine.clone()),
            export: configured.then(|| mine.clone()),
            max_prefix: None,
        };
        for eff in [
            np.effective_import(ebgp, opt_out),
            np.effective_export(ebgp, opt_out),
        ] {
            let got = apply(&eff, &ctx("10.0.0.0/24", &a)) != Verdict::Reject;
            assert_eq!(
                got, want,
                "ebgp={ebgp} configured={configured} opt_out={opt_out}"
            );
        }
    }
    let strict = Policy::reject_all();
    assert!(matches!(
        effective_import(false, Some(&strict), true),
        Cow::Borrowed(_)
    ));
}

#[test]
fn max_prefix_decisions() {
    use MaxPrefixDecision::*;
    let mp: MaxPrefix = toml::from_str("limit = 2\nrestart_after = 30").unwrap();
    let mut s = MaxPrefixState::new(mp);
    let stop = Exceeded {
        restart_after: Some(Duration::from_secs(30)),
    };
    let got: Vec<_> = [1, 2, 3, 3].into_iter().map(|n| s.on_accept(n)).collect();
    assert_eq!(got, [Ok, Ok, stop, stop]);

    let mut w = MaxPrefixState::new(MaxPrefix {
        limit: 2,
        warning_only: true,
        restart_after: None,
    });
    let got: Vec<_> = [2, 3, 4, 1, 3]
        .into_iter()
        .map(|n| w.on_accept(n))
        .collect();
    assert_eq!(got, [Ok, Warn, Ok, Ok, Warn]);
}

/// `TOML ==> error text`, `|` for a newline. A line not starting with `[p]` is one term
/// of policy `p`, with `then = "accept"` added unless it has a `then`.
const CONFIG_ERRORS: &str = r#"
[p]|terms = [] ==> missing field `default`
[p]|default = "drop" ==> unknown variant `drop`
[p]|default = "reject"|colour = 1 ==> unknown field `colour`
[p]|default = "reject"|[[p.terms]]|name = "x" ==> missing field `then`
then = "next" ==> unknown variant `next`
match.prefix = ["10.0.0.1/8 le 24"] ==> did you mean 10.0.0.0/8
match.community = { any = ["65536:1"] } ==> not a 16-bit number
match.community = { some = ["1:1"] } ==> unknown field `some`
match.as_path = { pattern = "^65001 (1/2)" } ==> "(1/2)" is not an AS number
match.neighbor = ["tor-1"] ==> "tor-1" is not an address or a prefix
actions = { next_hop = "me" } ==> neither "self" nor an address
actions = { add_large_community = ["1:2"] } ==> not GLOBAL:LOCAL1:LOCAL2
actions = { prepend = 300 } ==> prepend
"#;

#[test]
fn config_errors_are_clear() {
    for line in CONFIG_ERRORS.lines().filter(|l| !l.is_empty()) {
        let (body, want) = line.split_once(" ==> ").unwrap();
        let mut text = body.replace('|', "\n");
        if !body.starts_with("[p]") {
            text = format!("[p]\ndefault = \"reject\"\n[[p.terms]]\n{text}\n");
            if !body.starts_with("then") {
                text += "then = \"accept\"\n";
            }
        }
        let err = toml::from_str::<Policies>(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{body}\n--> {err}");
    }
    let err = toml::from_str::<MaxPrefix>("limit = 5\nrestart_after = 0").unwrap_err();
    assert!(err.to_string().contains("at least 1 second"), "{err}");
}

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

proptest! {
    /// Prefix-list entries against the definition: inside the entry's network, with a
    /// length in the ge/le window that parsing resolved (and parsing refuses exactly the
    /// inconsistent windows).
    #[test]
    fn prefix_entry_matches_brute_force(
        addr in any::<u32>(), len in 0u8..=32, ge in proptest::option::of(0u8..=34),
        le in proptest::option::of(0u8..=34), raddr in any::<u32>(), rlen in 0u8..=32,
    ) {
        let net = Ipv4Addr::from(addr & mask(len));
        let mut text = format!("{net}/{len}");
        if let Some(g) = ge { text += &format!(" ge {g}"); }
        if let Some(l) = le { text += &format!(" le {l}"); }
        let lo = ge.unwrap_or(len);
        let hi = le.unwrap_or(if ge.is_some() { 32 } else { len });
        let valid = len <= lo && lo <= hi && hi <= 32;
        let parsed = text.parse::<PrefixEntry>();
        prop_assert_eq!(parsed.is_ok(), valid, "{}", text);
        if let Ok(entry) = parsed {
            // Route prefixes near the entry too, not only random ones.
            for r in [raddr, (addr & mask(len)) | (raddr & !mask(len))] {
                let rnet = Ipv4Addr::from(r & mask(rlen));
                let route: IpNet = format!("{rnet}/{rlen}").parse().unwrap();
                let inside = rlen >= len && (r & mask(len)) == (addr & mask(len));
                let want = inside && (lo..=hi).contains(&rlen);
                prop_assert_eq!(entry.matches(&route), want, "{} vs {}", text, route);
            }
        }
    }

    /// An unanchored pattern of exact ASes matches iff it is a contiguous run of the
    /// path; `^A .* B$` iff the path starts with A and ends with B.
    #[test]
    fn as_path_pattern_brute_force(
        path in proptest::collection::vec(1u32..4, 0..7),
        needle in proptest::collection::vec(1u32..4, 1..3),
    ) {
        let as_path = AsPath::from_sequence(path.iter().copied());
        let words: Vec<String> = needle.iter().map(u32::to_string).collect();
        let p: AsPathPattern = words.join(" ").parse().unwrap();
        let run = path.windows(needle.len()).any(|w| w == needle.as_slice());
        prop_assert_eq!(p.matches(&as_path), run);
        let (a, b) = (needle[0], needle[needle.len() - 1]);
        let ends: AsPathPattern = format!("^{a} .* {b}$").parse().unwrap();
        let want = path.len() >= 2 && path[0] == a && path[path.len() - 1] == b;
        prop_assert_eq!(ends.matches(&as_path), want);
    }
}
