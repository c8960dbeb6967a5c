//! BFD authentication (RFC 5880 §6.7) against BIRD 2's BFD, the interop partner that
//! implements it (FRR's bfdd does not). Two network namespaces joined by a veth pair:
//! `bird` runs `/usr/sbin/bird` with a `protocol bfd` that has a static single-hop
//! neighbor, `authentication [meticulous] keyed sha1` and `password "…" { id N; }`; `us`
//! runs our BFD driver (`bgp_speaker::bfd::Bfd`) in a thread inside its namespace.
//!
//! For Keyed SHA1 and Meticulous Keyed SHA1:
//! - the right key and id: our session comes Up, and BIRD says Up too (`birdc show bfd
//!   sessions`);
//! - a wrong key: a new session never comes Up — BIRD's packets keep arriving and every
//!   one fails authentication (counted in `SessionStatus::auth_failures`), so the test
//!   waits for failures, not for time;
//! - the same key with another key id: the same.
//!
//! Namespaces are created with unique names and deleted by a guard; BIRD is stopped by its
//! pid; nothing is added to the machine's own namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bgp_speaker::bfd::{AuthKey, AuthType, Bfd, BfdConfig, BfdOptions, BfdState};
use contiv_tests::require_root;

const MUST: Duration = Duration::from_secs(30);
const US: Ipv4Addr = Ipv4Addr::new(10, 97, 1, 1);
const BIRD: Ipv4Addr = Ipv4Addr::new(10, 97, 1, 2);
const SECRET: &str = "bfd-interop-key";
const KEY_ID: u8 = 5;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces, BIRD and its files; all removed when dropped.
struct Setup {
    us: String,
    bird: String,
    dir: tempfile::TempDir,
    daemon: Option<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in [&self.us, &self.bird] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn setup(tag: &str) -> Setup {
    let pid = std::process::id();
    let s = Setup {
        us: format!("cbfda-us-{tag}-{pid}"),
        bird: format!("cbfda-bird-{tag}-{pid}"),
        dir: tempfile::tempdir().unwrap(),
        daemon: None,
    };
    for n in [&s.us, &s.bird] {
        ip(&["netns", "add", n]);
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    ip(&[
        "-n", &s.us, "link", "add", "eu", "type", "veth", "peer", "name", "eb", "netns", &s.bird,
    ]);
    ip(&["-n", &s.us, "addr", "add", "10.97.1.1/24", "dev", "eu"]);
    ip(&["-n", &s.bird, "addr", "add", "10.97.1.2/24", "dev", "eb"]);
    ip(&["-n", &s.us, "link", "set", "eu", "up"]);
    ip(&["-n", &s.bird, "link", "set", "eb", "up"]);
    s
}

/// BIRD's `authentication` value for a type.
fn bird_auth(t: AuthType) -> &'static str {
    match t {
        AuthType::KeyedSha1 => "keyed sha1",
        AuthType::MeticulousKeyedSha1 => "meticulous keyed sha1",
        AuthType::KeyedMd5 => "keyed md5",
        AuthType::MeticulousKeyedMd5 => "meticulous keyed md5",
    }
}

fn start_bird(s: &mut Setup, t: AuthType) {
    let conf = s.dir.path().join("bird.conf");
    std::fs::write(
        &conf,
        format!(
            "router id {BIRD};\n\
             protocol device {{ }}\n\
             protocol bfd {{\n\
               interface \"eb\" {{\n\
                 min rx interval 100 ms; min tx interval 100 ms; multiplier 3;\n\
                 authentication {auth};\n\
                 password \"{SECRET}\" {{ id {KEY_ID}; }};\n\
               }};\n\
               neighbor {US} dev \"eb\" local {BIRD};\n\
             }}\n",
            auth = bird_auth(t)
        ),
    )
    .unwrap();
    let ctl = s.dir.path().join("bird.ctl");
    let child = Command::new("ip")
        .args(["netns", "exec", &s.bird, "/usr/sbin/bird", "-f", "-c"])
        .arg(&conf)
        .arg("-s")
        .arg(&ctl)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting bird");
    s.daemon = Some(child);
}

/// `birdc show bfd sessions` in the BIRD namespace.
fn bird_sessions(s: &Setup) -> String {
    let ctl = s.dir.path().join("bird.ctl");
    let out = Command::new("/usr/sbin/birdc")
        .arg("-s")
        .arg(&ctl)
        .args(["show", "bfd", "sessions"])
        .output()
        .expect("running birdc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cfg() -> BfdConfig {
    BfdConfig {
        desired_min_tx: Duration::from_millis(100),
        required_min_rx: Duration::from_millis(100),
        detect_mult: 3,
    }
}

/// Runs `f` with a BFD driver inside namespace `ns`.
fn with_bfd<T: Send + 'static>(ns: &str, f: impl AsyncFnOnce(Bfd) -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("opening the namespace");
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("entering the namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let bfd = Bfd::start(BfdOptions::default()).unwrap();
            f(bfd).await
        })
    })
    .join()
    .expect("the BFD thread")
}

fn interop(t: AuthType) {
    let mut s = setup(match t {
        AuthType::KeyedSha1 => "k",
        _ => "m",
    });
    start_bird(&mut s, t);
    let key = (IpAddr::V4(BIRD), IpAddr::V4(US));
    let right = AuthKey::new(t, KEY_ID, SECRET.as_bytes().to_vec()).unwrap();
    let wrong_secret = AuthKey::new(t, KEY_ID, b"not-the-key".to_vec()).unwrap();
    let wrong_id = AuthKey::new(t, KEY_ID + 1, SECRET.as_bytes().to_vec()).unwrap();
    let us_ns = s.us.clone();
    let up = with_bfd(&us_ns, async move |bfd: Bfd| {
        bfd.add_with_auth(key.0, key.1, cfg(), Some(right)).unwrap();
        let mut w = bfd.watch();
        tokio::time::timeout(
            MUST,
            w.wait_for(|m| m.get(&key).is_some_and(|s| s.state == BfdState::Up)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{t}: never Up with the right key: {:?}",
                bfd.status(key.0, key.1)
            )
        })
        .unwrap()[&key]
            .clone()
    });
    assert_eq!(up.auth, Some(t));
    assert_eq!(up.auth_failures, 0, "{up:?}");
    // BIRD agrees (its table names our address and the state).
    let deadline = std::time::Instant::now() + MUST;
    loop {
        let o = bird_sessions(&s);
        if o.lines()
            .any(|l| l.contains(&US.to_string()) && l.contains("Up"))
        {
            eprintln!("{t}: BIRD:\n{o}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{t}: BIRD never shows the session Up:\n{o}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for (what, bad) in [
        ("a wrong secret", wrong_secret),
        ("a wrong key id", wrong_id),
    ] {
        let st = with_bfd(&us_ns, async move |bfd: Bfd| {
            bfd.add_with_auth(key.0, key.1, cfg(), Some(bad)).unwrap();
            let mut w = bfd.watch();
            let st = tokio::time::timeout(
                MUST,
                w.wait_for(|m| m.get(&key).is_some_and(|s| s.auth_failures >= 3)),
            )
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{t} with {what}: BIRD's packets did not arrive: {:?}",
                    bfd.status(key.0, key.1)
                )
            })
            .unwrap()[&key]
                .clone();
            bfd.shutdown().await;
            st
        });
        assert!(!st.was_up, "{t} with {what}: came Up: {st:?}");
        assert_ne!(st.state, BfdState::Up, "{t} with {what}");
    }
}

#[test]
fn bfd_keyed_sha1_with_bird() {
    if !require_root("bfd_keyed_sha1_with_bird") {
        return;
    }
    interop(AuthType::KeyedSha1);
}

#[test]
fn bfd_meticulous_keyed_sha1_with_bird() {
    if !require_root("bfd_meticulous_keyed_sha1_with_bird") {
        return;
    }
    interop(AuthType::MeticulousKeyedSha1);
}
