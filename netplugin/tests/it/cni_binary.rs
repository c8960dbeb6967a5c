//! The `contiv-cni` binary as a subprocess, against the CNI socket server (with the
//! in-memory service) on a temporary unix socket; and its behaviour when netplugin is not
//! reachable.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use netplugin::cni::server::{bind_unix, router, serve};
use netplugin::cni::testing::FakeService;
use serde_json::{Value, json};

const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Server {
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    socket: PathBuf,
    svc: Arc<FakeService>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/contiv/netplugin.sock");
    let svc = Arc::new(FakeService::new().with_network(
        "default",
        "contiv-net",
        &[("20.1.1.0/24", Some("20.1.1.1"))],
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = {
        let _g = rt.enter();
        bind_unix(&socket).unwrap()
    };
    rt.spawn(serve(listener, router(svc.clone()), async {
        let _ = rx.await;
    }));
    Server {
        _rt: rt,
        _dir: dir,
        socket,
        svc,
        stop: Some(tx),
    }
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.stdout)))
    }
}

fn cni(cmd: &str, netns: &str, stdin: &Value) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_contiv-cni"))
        .env_clear()
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", CID)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAME=p1;K8S_POD_NAMESPACE=default",
        )
        .env("CNI_PATH", "/opt/cni/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(stdin).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
    }
}

fn conf(version: &str, socket: &Path) -> Value {
    json!({
        "cniVersion": version,
        "name": "contiv",
        "type": "contiv-cni",
        "network": "contiv-net",
        "netplugin_socket": socket,
    })
}

#[test]
fn add_check_status_del_through_the_socket() {
    let srv = start_server();
    let add = cni("ADD", "/run/netns/test1", &conf("1.0.0", &srv.socket));
    assert_eq!(add.code, 0, "{:?}", String::from_utf8_lossy(&add.stdout));
    let result = add.json();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(result["ips"][0]["address"], "20.1.1.2/24");
    assert_eq!(result["interfaces"][1]["sandbox"], "/run/netns/test1");
    {
        let st = srv.svc.state();
        let req = st.last_add.as_ref().unwrap();
        assert_eq!(req.attachment.container_id, CID);
        assert_eq!(req.labels["K8S_POD_NAME"], "p1");
    }

    let mut c = conf("1.0.0", &srv.socket);
    c["prevResult"] = result.clone();
    let check = cni("CHECK", "/run/netns/test1", &c);
    assert_eq!((check.code, check.stdout.len()), (0, 0));

    let status = cni("STATUS", "", &conf("1.1.0", &srv.socket));
    assert_eq!(
        (status.code, status.stdout.len()),
        (0, 0),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    // DEL with an empty netns (containerd) and prevResult (podman).
    let mut c = conf("1.0.0", &srv.socket);
    c["prevResult"] = result;
    let del = cni("DEL", "", &c);
    assert_eq!((del.code, del.stdout.len()), (0, 0));
    assert!(srv.svc.state().endpoints.is_empty());
    // DEL again: still fine.
    assert_eq!(cni("DEL", "", &c).code, 0);
}

#[test]
fn service_errors_cross_the_socket() {
    let srv = start_server();
    let mut c = conf("1.0.0", &srv.socket);
    c["network"] = json!("nosuch");
    let add = cni("ADD", "/run/netns/x", &c);
    assert_eq!(add.code, 1);
    let v = add.json();
    assert_eq!(v["code"], 7);
    assert!(v["details"].as_str().unwrap().contains("nosuch"), "{v}");

    srv.svc.state().ready = false;
    let add = cni("ADD", "/run/netns/x", &conf("1.0.0", &srv.socket));
    assert_eq!((add.code, add.json()["code"].clone()), (1, json!(11)));
    let status = cni("STATUS", "", &conf("1.1.0", &srv.socket));
    assert_eq!((status.code, status.json()["code"].clone()), (1, json!(50)));
}

#[test]
fn unreachable_netplugin() {
    let dir = tempfile::tempdir().unwrap();
    // A missing socket, and a stale one nobody listens on.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for socket in [dir.path().join("missing.sock"), stale] {
        let add = cni("ADD", "/run/netns/x", &conf("1.0.0", &socket));
        assert_eq!(add.code, 1);
        let v = add.json();
        assert_eq!(v["code"], 11, "{v}");
        assert_eq!(v["cniVersion"], "1.0.0");
        assert!(
            v["details"]
                .as_str()
                .unwrap()
                .contains(socket.to_str().unwrap()),
            "{v}"
        );

        let del = cni("DEL", "", &conf("1.0.0", &socket));
        assert_eq!((del.code, del.stdout.len()), (0, 0));

        let status = cni("STATUS", "", &conf("1.1.0", &socket));
        assert_eq!(status.json()["code"], 50);
    }
}

#[test]
fn version_and_bad_input_through_the_binary() {
    let v = cni("VERSION", "", &json!({"cniVersion": "0.4.0"}));
    assert_eq!(v.code, 0);
    assert_eq!(v.json()["supportedVersions"][4], "1.1.0");
    assert_eq!(v.json()["cniVersion"], "0.4.0");

    let bad = cni("ADD", "/x", &json!("just a string"));
    assert_eq!(bad.code, 1);
    assert_eq!(bad.json()["code"], 6);
}

#[test]
fn bind_replaces_stale_sockets_only() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _g = rt.enter();
    let path = dir.path().join("a.sock");
    let live = bind_unix(&path).unwrap();
    let err = bind_unix(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    drop(live);
    // The file is left behind, nobody accepts: replaced.
    let _again = bind_unix(&path).unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = bind_unix(&file).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
}
