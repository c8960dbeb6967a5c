//! netctl against a netmaster serving HTTPS with an admin token: `--ca-file` is what it
//! trusts (no CA, or another CA, is refused with exit 2), host credentials are made,
//! listed (names only) and revoked, and a host's credential cannot drive netctl.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ADMIN: &str = "netctl-admin-token";

/// A CA and a certificate for 127.0.0.1 it signed, written into `dir`; the CA's path.
fn pki(dir: &Path) -> (PathBuf, netmaster::tls::TlsFiles) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "netctl test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    (
        dir.join("ca.pem"),
        netmaster::tls::TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        },
    )
}

fn netctl(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netctl"))
        .args(args)
        .env("NETMASTER", url)
        .env_remove("NETMASTER_CA")
        .env_remove("NETMASTER_TOKEN")
        .env_remove("NETMASTER_TOKEN_FILE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn netctl_over_tls_with_host_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, tls) = pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = pki(other.path());
    let admin = dir.path().join("admin.token");
    std::fs::write(&admin, ADMIN).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = netmaster::server::Config::embedded(addr, dir.path().join("data"));
    cfg.tls = Some(tls);
    cfg.token = Some(ADMIN.into());
    let running = rt.block_on(netmaster::server::start(cfg)).unwrap();
    let url = running.url();
    let (ca_s, admin_s, other_s) = (
        ca.display().to_string(),
        admin.display().to_string(),
        other_ca.display().to_string(),
    );

    // The right CA and the admin token.
    let o = netctl(
        &url,
        &[
            "--ca-file",
            &ca_s,
            "--token-file",
            &admin_s,
            "tenant",
            "ls",
            "-q",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // No CA (no system roots either), or another CA: the certificate is refused.
    for args in [
        vec!["--token-file", &admin_s, "tenant", "ls"],
        vec![
            "--ca-file",
            &other_s,
            "--token-file",
            &admin_s,
            "tenant",
            "ls",
        ],
    ] {
        let o = netctl(&url, &args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("certificate"), "{}", text(&o));
    }
    // A CA file that is not there, or holds no certificate, is named.
    let o = netctl(&url, &["--ca-file", "/nonexistent/ca.pem", "tenant", "ls"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/ca.pem"), "{}", text(&o));
    let o = netctl(&url, &["--ca-file", &admin_s, "tenant", "ls"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("no CERTIFICATE"), "{}", text(&o));
    // Reads need the token.
    let o = netctl(&url, &["--ca-file", &ca_s, "tenant", "ls"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("401"), "{}", text(&o));

    // Host credentials: made (the token printed once), listed by name, revoked.
    let admin_args = ["--ca-file", ca_s.as_str(), "--token-file", admin_s.as_str()];
    let run = |more: &[&str]| {
        let mut a: Vec<&str> = admin_args.to_vec();
        a.extend_from_slice(more);
        let o = netctl(&url, &a);
        assert!(o.status.success(), "{more:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let token = run(&["host", "credential", "create", "host1"])
        .trim()
        .to_string();
    assert!(token.starts_with("host1.") && token.len() > 40, "{token}");
    let listed = run(&["host", "credential", "ls"]);
    assert_eq!(listed, "host1\n");
    assert!(!listed.contains(&token));
    // A host's credential does not drive netctl.
    let host_token = dir.path().join("host1.token");
    std::fs::write(&host_token, &token).unwrap();
    let h = host_token.display().to_string();
    let o = netctl(
        &url,
        &[
            "--ca-file",
            &ca_s,
            "--token-file",
            &h,
            "tenant",
            "create",
            "evil",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("403") && text(&o).contains("host1"),
        "{}",
        text(&o)
    );
    let o = netctl(
        &url,
        &[
            "--ca-file",
            &ca_s,
            "--token-file",
            &h,
            "host",
            "credential",
            "create",
            "host2",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    run(&["host", "credential", "rm", "host1"]);
    assert_eq!(run(&["host", "credential", "ls"]), "");
    let o = netctl(
        &url,
        &[
            "--ca-file",
            &ca_s,
            "--token-file",
            &admin_s,
            "host",
            "credential",
            "rm",
            "host1",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "removing it twice: {}", text(&o));
    rt.block_on(running.stop());
}
