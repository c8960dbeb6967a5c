//! netplugin refuses to start with a `--netmaster-ca` it cannot use, naming the file.

use std::process::Command;

fn start_with_ca(ca: &std::path::Path, state: &std::path::Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_netplugin"))
        .args(["--host", "h1", "--netmaster", "https://127.0.0.1:1"])
        .arg("--netmaster-ca")
        .arg(ca)
        .arg("--state-dir")
        .arg(state)
        .args(["--no-docker", "--dns-port", "0", "--metrics-listen", ""])
        .env_remove("NETMASTER_CA")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_bad_netmaster_ca_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let (code, err) = start_with_ca(&missing, &dir.path().join("state"));
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("--netmaster-ca") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    let empty = dir.path().join("not-a-ca.pem");
    std::fs::write(&empty, "hello\n").unwrap();
    let (code, err) = start_with_ca(&empty, &dir.path().join("state"));
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("no CERTIFICATE") && err.contains("not-a-ca.pem"),
        "{err}"
    );
}
