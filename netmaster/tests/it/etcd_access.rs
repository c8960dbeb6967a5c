//! netmaster on an etcd that requires TLS with client certificates, or a user and
//! password (a real etcd on free loopback ports, certificates made here with rcgen): the
//! right credentials work for the store and the election; a missing client certificate,
//! one from another CA, an etcd certificate from a CA we do not trust, plain http to the
//! TLS port and a wrong password are each refused at startup with an error saying what
//! failed.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use contiv_model::Secret;
use netmaster::server::{self, Backend, Config, Running};
use netmaster::store::{ClientCert, EtcdAccess, EtcdStore, EtcdUser, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA that can sign server and client certificates into files.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Writes the CA certificate to `dir/<file>`.
    fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// A leaf certificate for `sans` with `usage`, written to `dir/<name>.pem` and
    /// `dir/<name>-key.pem`.
    fn leaf(
        &self,
        dir: &Path,
        name: &str,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> ClientCert {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let c = ClientCert {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&c.cert, cert.pem()).unwrap();
        std::fs::write(&c.key, key.serialize_pem()).unwrap();
        c
    }
}

/// An etcd serving TLS on loopback that requires a client certificate from `ca`, and the
/// files a client needs.
struct TlsEtcd {
    etcd: common::Etcd,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
    client: ClientCert,
}

impl TlsEtcd {
    fn start() -> TlsEtcd {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("etcd test ca");
        let ca_file = ca.write(dir.path(), "ca.pem");
        let server = ca.leaf(
            dir.path(),
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = ca.leaf(
            dir.path(),
            "netmaster",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let s = |p: &Path| p.display().to_string();
        let etcd = common::Etcd::start_serving(common::Serve {
            scheme: "https",
            args: vec![
                format!("--cert-file={}", s(&server.cert)),
                format!("--key-file={}", s(&server.key)),
                "--client-cert-auth".into(),
                format!("--trusted-ca-file={}", s(&ca_file)),
            ],
            ctl: vec![
                format!("--cacert={}", s(&ca_file)),
                format!("--cert={}", s(&client.cert)),
                format!("--key={}", s(&client.key)),
            ],
        });
        TlsEtcd {
            etcd,
            dir,
            ca_file,
            client,
        }
    }

    fn access(&self) -> EtcdAccess {
        EtcdAccess {
            ca: Some(self.ca_file.clone()),
            client_cert: Some(self.client.clone()),
            user: None,
        }
    }
}

async fn start_netmaster(endpoint: &str, access: EtcdAccess) -> anyhow::Result<Running> {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    server::start(Config {
        listen: addr,
        backend: Backend::Etcd {
            endpoints: vec![endpoint.to_string()],
            prefix: "/access".into(),
            access,
        },
        advertise_url: None,
        token: None,
        insecure: false,
        tls: None,
        peer_ca: None,
        election_ttl: 2,
        endpoint_gc_after: None,
    })
    .await
}

/// The netmaster leads, stores a tenant and reads it back.
async fn works(nm: &Running) {
    let mut role = nm.role.clone();
    tokio::time::timeout(Duration::from_secs(20), role.wait_for(|r| r.is_leader()))
        .await
        .expect("a leader is elected")
        .unwrap();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/api/v1/tenants/t1/", nm.url()))
        .body(r#"{"tenantName":"t1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = c
        .get(format!("{}/api/v1/tenants/t1/", nm.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tenantName"], "t1");
}

/// The error of a connection that must be refused, as text.
async fn refused(endpoint: &str, access: &EtcdAccess) -> String {
    match EtcdStore::connect_with(&[endpoint.to_string()], "/access", access).await {
        Ok(_) => panic!("{endpoint}: connected with {access:?}"),
        Err(e) => {
            eprintln!("{endpoint}: {e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn etcd_tls_with_a_client_certificate_works() {
    let etcd = TlsEtcd::start();
    let nm = start_netmaster(&etcd.etcd.endpoint, etcd.access())
        .await
        .unwrap();
    works(&nm).await;
    nm.stop().await;
    // The tenant really is in the TLS etcd.
    let keys = etcd
        .etcd
        .ctl(&["get", "--prefix", "--keys-only", "/access/"]);
    assert!(keys.contains("t1"), "{keys}");
}

#[tokio::test]
async fn etcd_tls_without_a_client_certificate_is_refused_clearly() {
    let etcd = TlsEtcd::start();
    let access = EtcdAccess {
        client_cert: None,
        ..etcd.access()
    };
    let e = refused(&etcd.etcd.endpoint, &access).await;
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
}

#[tokio::test]
async fn etcd_tls_with_a_client_certificate_of_another_ca_is_refused_clearly() {
    let etcd = TlsEtcd::start();
    let other = Ca::new("another ca");
    let access = EtcdAccess {
        client_cert: Some(other.leaf(
            etcd.dir.path(),
            "intruder",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )),
        ..etcd.access()
    };
    let e = refused(&etcd.etcd.endpoint, &access).await;
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    // netmaster stops at startup with the same reason.
    let e = format!(
        "{:#}",
        start_netmaster(&etcd.etcd.endpoint, access)
            .await
            .unwrap_err()
    );
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
}

#[tokio::test]
async fn etcd_tls_server_from_an_untrusted_ca_is_refused_clearly() {
    let etcd = TlsEtcd::start();
    let other = Ca::new("not etcd's ca");
    let access = EtcdAccess {
        ca: Some(other.write(etcd.dir.path(), "other-ca.pem")),
        ..etcd.access()
    };
    let e = refused(&etcd.etcd.endpoint, &access).await;
    assert!(e.contains("TLS") && e.contains("UnknownIssuer"), "{e}");
}

#[tokio::test]
async fn plain_http_to_a_tls_etcd_fails() {
    let etcd = TlsEtcd::start();
    let plain = etcd.etcd.endpoint.replace("https://", "http://");
    let e = refused(&plain, &EtcdAccess::default()).await;
    assert!(e.contains(&plain) && e.contains("use https://"), "{e}");
}

/// A plain loopback etcd with authentication on: user `root` with `password`.
fn auth_etcd(password: &str) -> common::Etcd {
    let etcd = common::Etcd::start();
    etcd.ctl(&["user", "add", &format!("root:{password}")]);
    etcd.ctl(&["auth", "enable"]);
    etcd
}

fn user(password: &str) -> EtcdAccess {
    EtcdAccess {
        user: Some(EtcdUser {
            name: "root".into(),
            password: Secret::new(password),
        }),
        ..EtcdAccess::default()
    }
}

#[tokio::test]
async fn etcd_user_and_password_work() {
    let etcd = auth_etcd("right-pw");
    // Without credentials etcd refuses (authentication really is on).
    let e = refused(&etcd.endpoint, &EtcdAccess::default()).await;
    assert!(
        e.contains("permission denied") || e.contains("user name"),
        "{e}"
    );
    let nm = start_netmaster(&etcd.endpoint, user("right-pw"))
        .await
        .unwrap();
    works(&nm).await;
    nm.stop().await;
}

#[tokio::test]
async fn etcd_wrong_password_is_refused_clearly() {
    let etcd = auth_etcd("right-pw");
    let e = refused(&etcd.endpoint, &user("wrong-pw")).await;
    assert!(
        e.contains("authentication failed") && e.contains("root"),
        "{e}"
    );
    assert!(!e.contains("wrong-pw") && !e.contains("right-pw"), "{e}");
}

#[tokio::test]
async fn an_unreadable_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let access = EtcdAccess {
        ca: Some(dir.path().join("missing-ca.pem")),
        ..EtcdAccess::default()
    };
    let e = refused("127.0.0.1:1", &access).await;
    assert!(e.contains("missing-ca.pem"), "{e}");
    // Access errors are not store outages.
    let err = EtcdStore::connect_with(&["127.0.0.1:1".into()], "/x", &access)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Access(_)), "{err}");
}

#[tokio::test]
async fn an_expired_etcd_token_is_renewed() {
    // Tokens live one second without use.
    let etcd = common::Etcd::start_serving(common::Serve {
        args: vec!["--auth-token-ttl=1".into()],
        ..common::Serve::default()
    });
    etcd.ctl(&["user", "add", "root:right-pw"]);
    etcd.ctl(&["auth", "enable"]);
    let nm = start_netmaster(&etcd.endpoint, user("right-pw"))
        .await
        .unwrap();
    works(&nm).await;
    // A client that does not renew its token is refused once the token expired: the
    // fault is real here.
    let opts = etcd_client::ConnectOptions::new().with_user("root", "right-pw");
    let mut plain = etcd_client::Client::connect([&etcd.endpoint], Some(opts))
        .await
        .unwrap();
    plain.get("/k", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let e = plain.get("/k", None).await.unwrap_err().to_string();
    assert!(e.contains("invalid auth token"), "{e}");
    // netmaster's client authenticates again and the write goes through.
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/api/v1/tenants/t2/", nm.url()))
        .body(r#"{"tenantName":"t2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    nm.stop().await;
}

/// The `netmaster` binary with its etcd flags, against an etcd that wants both a client
/// certificate and a user: it serves; a wrong password and an unreadable password file
/// stop it at startup, saying why.
#[tokio::test]
async fn the_netmaster_binary_takes_the_etcd_flags() {
    let etcd = TlsEtcd::start();
    etcd.etcd.ctl(&["user", "add", "root:right-pw"]);
    etcd.etcd.ctl(&["auth", "enable"]);
    let dir = etcd.dir.path();
    std::fs::write(dir.join("pw"), "right-pw\n").unwrap();
    std::fs::write(dir.join("wrong-pw"), "wrong-pw\n").unwrap();
    let run = |password_file: &str, port: u16| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netmaster"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--etcd-endpoints", &etcd.etcd.endpoint])
            .arg("--etcd-ca")
            .arg(&etcd.ca_file)
            .arg("--etcd-cert")
            .arg(&etcd.client.cert)
            .arg("--etcd-key")
            .arg(&etcd.client.key)
            .args(["--etcd-user", "root", "--etcd-password-file"])
            .arg(dir.join(password_file))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    for (file, expect) in [
        ("wrong-pw", "authentication failed"),
        ("missing-pw", "missing-pw"),
    ] {
        let out = run(file, common::free_port()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file}: started");
        assert!(stderr.contains(expect), "{file}: {stderr}");
        assert!(
            !stderr.contains("right-pw") && !stderr.contains("wrong-pw\n"),
            "{stderr}"
        );
    }

    let port = common::free_port();
    let mut child = run("pw", port).spawn().unwrap();
    let c = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/tenants/t1/");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("netmaster exited ({s}): {err}");
        }
        // Writes go through once the netmaster leads.
        if let Ok(r) = c.post(&url).body(r#"{"tenantName":"t1"}"#).send().await
            && r.status() != 503
        {
            break r.status();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "netmaster did not serve"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let keys = etcd.etcd.ctl(&[
        "--user",
        "root:right-pw",
        "get",
        "--prefix",
        "--keys-only",
        "/contiv.io/",
    ]);
    assert!(keys.contains("t1"), "{keys}");
}

/// The least a netmaster needs (as SECURITY.md tells): a user whose role may read and
/// write its key prefix, nothing else. Another cluster's prefix stays out of its reach.
#[tokio::test]
async fn a_user_limited_to_the_prefix_is_enough() {
    let etcd = auth_etcd("root-pw");
    let root = ["--user", "root:root-pw"];
    let ctl = |args: &[&str]| etcd.ctl(&[&root[..], args].concat());
    ctl(&["role", "add", "netmaster"]);
    ctl(&[
        "role",
        "grant-permission",
        "netmaster",
        "--prefix=true",
        "readwrite",
        "/access",
    ]);
    ctl(&["user", "add", "nm:nm-pw"]);
    ctl(&["user", "grant-role", "nm", "netmaster"]);
    ctl(&["put", "/other/secret", "x"]);
    let access = EtcdAccess {
        user: Some(EtcdUser {
            name: "nm".into(),
            password: Secret::new("nm-pw"),
        }),
        ..EtcdAccess::default()
    };
    let nm = start_netmaster(&etcd.endpoint, access.clone())
        .await
        .unwrap();
    works(&nm).await;
    nm.stop().await;
    // The same user cannot open another prefix.
    let e = match EtcdStore::connect_with(std::slice::from_ref(&etcd.endpoint), "/other", &access)
        .await
    {
        Ok(_) => panic!("read /other"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("permission denied") && e.contains("/other"),
        "{e}"
    );
}
