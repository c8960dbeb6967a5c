//! A Bgp neighbor's `password-ref` end to end on the `quickstart` fabric: tor1 (FRR)
//! requires a TCP MD5 password from its hosts, and host1's netplugin reads the password
//! from the file the `password-ref` names in its `--bgp-secrets-dir`.
//!
//! - No secret file yet: host1's report carries a `bgpError` naming the missing file, and
//!   tor1 never sees host1 Established (no session without MD5).
//! - A wrong password: the plan builds (no error) but the session never comes up.
//! - The right password (mode 0600): the session is Established on both sides and netctl
//!   shows it.
//!
//! Also `bfd-auth`'s key, read from the same directory under the same rules.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use contiv_tests::cluster::{Netmaster, Netplugin, deploy, wait_for};
use contiv_tests::require_root;

const LONG: Duration = Duration::from_secs(60);
/// How long a session that must not come up is watched: longer than netplugin's resync
/// (30 s) would not matter here: the wrong password is in effect from the start, so it
/// has been tried several times.
const NEVER: Duration = Duration::from_secs(15);
const PASSWORD: &str = "contiv-md5-ref-s3cret";

/// host1's last report as netmaster lists it.
fn host1_report(nm: &Netmaster) -> serde_json::Value {
    nm.host_report("host1")
}

/// FRR's state of a neighbor, empty when FRR has no such neighbor (a dynamic neighbor
/// exists only once its TCP connection is up).
fn frr_state(lab: &containerlab::Lab, node: &str, peer: &str) -> String {
    let out = lab
        .exec_ok(node, &format!("vtysh -c 'show bgp neighbors {peer} json'"))
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v.get(peer)?.get("bgpState")?.as_str().map(String::from))
        .unwrap_or_default()
}

fn write_secret(path: &Path, password: &str) {
    std::fs::write(path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn password_ref_gives_the_session_its_md5_password() {
    if !require_root("password_ref_gives_the_session_its_md5_password") {
        return;
    }
    let lab = deploy("quickstart", "md5ref");
    // tor1 requires the password from every host of its range.
    lab.exec_ok(
        "tor1",
        &format!("vtysh -c 'conf t' -c 'router bgp 65001' -c 'neighbor HOSTS password {PASSWORD}'"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("bgp-secrets");
    std::fs::create_dir(&secrets).unwrap();
    let secret = secrets.join("tor1");

    let nm = Netmaster::start();
    let api = &nm;
    nm.ok("netctl global set --fwd-mode routing");
    let status = nm.call(
        "PUT",
        "/api/v1/Bgps/host1/",
        Some(
            r#"{"hostname": "host1", "routerip": "10.1.1.1/31", "as": "65101",
            "neighbors": [{"address": "10.1.1.0", "as": "65001", "password-ref": "tor1"}]}"#,
        ),
        None,
    );
    assert!(
        matches!(status, Some((200, _))),
        "creating the Bgp object: {status:?}"
    );

    let secrets_arg = secrets.display().to_string();
    let p1 = Netplugin::start_with_args(
        &lab,
        "host1",
        &nm,
        tmp.path(),
        &["--bgp-secrets-dir", &secrets_arg],
    );

    // No secret file: a clear error in the host's report, and no session.
    let err = wait_for(
        "host1 reports the missing secret",
        LONG,
        || {
            host1_report(api)["bgpError"]
                .as_str()
                .filter(|e| e.contains("does not exist"))
                .map(String::from)
        },
        || format!("{}\n{}", host1_report(api), p1.log_tail()),
    );
    assert!(
        err.contains(&secret.display().to_string()) && err.contains("10.1.1.0"),
        "{err}"
    );
    assert_ne!(frr_state(&lab, "tor1", "10.1.1.1"), "Established");

    // A wrong password: the plan is fine, the session is not.
    write_secret(&secret, "not-the-password");
    wait_for(
        "host1's Bgp object in effect (no bgpError)",
        LONG,
        || host1_report(api).get("bgpError").is_none().then_some(()),
        || format!("{}\n{}", host1_report(api), p1.log_tail()),
    );
    let start = Instant::now();
    while start.elapsed() < NEVER {
        assert_ne!(
            frr_state(&lab, "tor1", "10.1.1.1"),
            "Established",
            "tor1 accepted host1 with the wrong password"
        );
        let r = host1_report(api);
        assert_ne!(r["neighbors"][0]["state"], "established", "{r}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // The right password: up on both sides (netplugin re-reads secrets on its resync).
    write_secret(&secret, PASSWORD);
    wait_for(
        "host1's session with tor1 established (netctl bgp inspect)",
        LONG,
        || {
            nm.ok("netctl bgp inspect host1")
                .contains("\"neighborStatus\": \"established\"")
                .then_some(())
        },
        || format!("{}\n{}", nm.ok("netctl bgp inspect host1"), p1.log_tail()),
    );
    wait_for(
        "tor1 sees host1 Established",
        LONG,
        || (frr_state(&lab, "tor1", "10.1.1.1") == "Established").then_some(()),
        || frr_state(&lab, "tor1", "10.1.1.1"),
    );
    // The password never reaches the log.
    assert!(!p1.log_tail().contains(PASSWORD));
}

/// A `Bgp` object's `bfd-auth` end to end: host1's netplugin reads the BFD key from the
/// file `secret-ref` names in its `--bgp-secrets-dir`, with the rules of `password-ref`.
/// (Authenticated BFD itself is tested against BIRD, `bfd_auth_bird.rs`: FRR's bfdd has
/// no authentication, so tor1 runs BGP only here.)
///
/// - No key file: `bgpError` names the neighbor, `bfd-auth` and the missing file; no
///   session.
/// - A world-readable key file: refused, with the mode in `bgpError`.
/// - Mode 0600: the object is in effect and BGP comes up; the key is in neither the
///   object nor netplugin's log.
#[test]
fn bfd_auth_key_comes_from_the_secrets_dir() {
    if !require_root("bfd_auth_key_comes_from_the_secrets_dir") {
        return;
    }
    const KEY: &str = "bfd-key-s3cret";
    let lab = deploy("quickstart", "bfdkey");
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("bgp-secrets");
    std::fs::create_dir(&secrets).unwrap();
    let secret = secrets.join("tor-bfd");

    let nm = Netmaster::start();
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok(
        "netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor=10.1.1.0 \
         --neighbor-as=65001 --bfd --bfd-auth-ref tor-bfd --bfd-auth-type keyed-sha1 \
         --bfd-auth-key-id 3",
    );
    let secrets_arg = secrets.display().to_string();
    let p1 = Netplugin::start_with_args(
        &lab,
        "host1",
        &nm,
        tmp.path(),
        &["--bgp-secrets-dir", &secrets_arg],
    );

    let err = wait_for(
        "host1 reports the missing BFD key",
        LONG,
        || {
            host1_report(&nm)["bgpError"]
                .as_str()
                .filter(|e| e.contains("does not exist"))
                .map(String::from)
        },
        || format!("{}\n{}", host1_report(&nm), p1.log_tail()),
    );
    assert!(
        err.contains("bfd-auth")
            && err.contains(&secret.display().to_string())
            && err.contains("10.1.1.0"),
        "{err}"
    );
    assert_ne!(frr_state(&lab, "tor1", "10.1.1.1"), "Established");

    std::fs::write(&secret, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    wait_for(
        "host1 reports the world-readable BFD key",
        LONG,
        || {
            host1_report(&nm)["bgpError"]
                .as_str()
                .filter(|e| e.contains("readable by every user"))
                .map(String::from)
        },
        || format!("{}\n{}", host1_report(&nm), p1.log_tail()),
    );

    write_secret(&secret, KEY);
    wait_for(
        "host1's Bgp object in effect and the session established",
        LONG,
        || {
            (host1_report(&nm).get("bgpError").is_none()
                && nm
                    .ok("netctl bgp inspect host1")
                    .contains("\"neighborStatus\": \"established\""))
            .then_some(())
        },
        || format!("{}\n{}", nm.ok("netctl bgp inspect host1"), p1.log_tail()),
    );
    let inspect = nm.ok("netctl bgp inspect host1");
    assert!(inspect.contains("\"secret-ref\": \"tor-bfd\""), "{inspect}");
    assert!(!inspect.contains(KEY));
    assert!(!p1.log_tail().contains(KEY));
}
