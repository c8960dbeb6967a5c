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
