//! A Contiv cluster on a lab fabric: netmaster (in this process, on loopback), one
//! netplugin process per lab host (in the machine's namespace, driving the host's
//! namespace with `--netns`), netctl, CNI calls through the real `contiv-cni` binary,
//! and container namespaces. Everything is torn down on drop, also when a test fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary of the workspace, next to the test executable's directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

/// netmaster running in this process, as it is run for real off loopback: HTTPS with a
/// certificate for 127.0.0.1 from a CA made for the test, an admin token that netctl
/// and the test's own requests send, and a credential of its own for each netplugin
/// (made with `netctl host credential create`).
#[allow(missing_debug_implementations)]
pub struct Netmaster {
    pub url: String,
    /// The CA (PEM) netmaster's certificate chains to.
    pub ca: PathBuf,
    /// The file holding the admin token.
    pub token_file: PathBuf,
    /// A client that trusts the CA (one, so its connections are reused).
    http: reqwest::blocking::Client,
    rt: tokio::runtime::Runtime,
    running: Option<netmaster::server::Running>,
    _dir: tempfile::TempDir,
}

/// How a netplugin reaches netmaster: its URL, the CA and its host's credential.
#[derive(Debug, Clone)]
pub struct NetmasterLink {
    pub url: String,
    pub ca: PathBuf,
    pub token_file: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1 signed by it, written as `ca.pem`,
/// `server.pem` and `server.key` in `dir`.
fn write_pki(dir: &Path) -> netmaster::tls::TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "contiv-tests CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca.pem");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("server.pem");
    write_private(&dir.join("server.key"), &key.serialize_pem());
    netmaster::tls::TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("private file");
    f.write_all(text.as_bytes()).expect("private file");
}

impl Netmaster {
    /// Starts netmaster on 127.0.0.1 with TLS and an admin token.
    pub fn start() -> Netmaster {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
        let tls = write_pki(dir.path());
        let token = format!("admin-{}", std::process::id());
        let token_file = dir.path().join("admin.token");
        write_private(&token_file, &token);
        let mut cfg = netmaster::server::Config::embedded(addr, dir.path().join("data"));
        cfg.tls = Some(tls);
        cfg.token = Some(token.into());
        let running = rt
            .block_on(netmaster::server::start(cfg))
            .expect("netmaster starts");
        let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca.pem");
        let http = reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Netmaster {
            url: running.url(),
            ca: dir.path().join("ca.pem"),
            token_file,
            http,
            rt,
            running: Some(running),
            _dir: dir,
        }
    }

    /// Runs netctl with a shell-like command line (`netctl net create ...`, split on
    /// spaces), with netmaster's CA and the admin token.
    pub fn netctl(&self, line: &str) -> Output {
        let args: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(args[0], "netctl", "{line}");
        Command::new(bin("netctl"))
            .args(&args[1..])
            .env("NETMASTER", &self.url)
            .env("NETMASTER_CA", &self.ca)
            .env("NETMASTER_TOKEN_FILE", &self.token_file)
            .env_remove("NETMASTER_TOKEN")
            .output()
            .expect("netctl runs")
    }

    /// Runs netctl and requires success; returns stdout.
    pub fn ok(&self, line: &str) -> String {
        let o = self.netctl(line);
        assert!(
            o.status.success(),
            "{line}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A credential for `host` (made with netctl, replacing any older one) in a file
    /// only root may read, and how a netplugin of that host reaches netmaster with it.
    /// The token and a copy of the CA go into `dir` (the netplugin's own), so a
    /// netplugin restarted after netmaster is gone still finds them, as on a real host.
    pub fn link(&self, host: &str, dir: &Path) -> NetmasterLink {
        let token = self.ok(&format!("netctl host credential create {host}"));
        let token_file = dir.join("netmaster.token");
        write_private(&token_file, token.trim());
        let ca = dir.join("netmaster-ca.pem");
        std::fs::copy(&self.ca, &ca).expect("copy of the CA");
        NetmasterLink {
            url: self.url.clone(),
            ca,
            token_file,
        }
    }

    /// The admin token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(&self.token_file).expect("admin token")
    }

    /// An HTTPS request to netmaster with `token` (the admin's when `None`); the status
    /// and the body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> Option<(u16, String)> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).ok()?;
        let admin = self.admin_token();
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token.unwrap_or(&admin));
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().ok()?))
    }

    /// The body of a 200 answer to an admin's GET of `path`.
    pub fn get(&self, path: &str) -> Option<String> {
        match self.call("GET", path, None, None)? {
            (200, body) => Some(body),
            _ => None,
        }
    }
}

impl Netmaster {
    /// The address netmaster listens on.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("netmaster's url is https://<ip>:<port>")
    }

    /// The intent revision netmaster is at (`GET /info`).
    pub fn revision(&self) -> i64 {
        let body = self.get("/info").expect("netmaster answers /info");
        let v: serde_json::Value = serde_json::from_str(&body).expect("/info is JSON");
        v["revision"].as_i64().expect("/info has the revision")
    }

    /// The report a host's netplugin last sent (`GET /api/v1/feed/hosts/`), or `Null`.
    pub fn host_report(&self, host: &str) -> serde_json::Value {
        self.get("/api/v1/feed/hosts/")
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .map(|v| v[host].clone())
            .unwrap_or_default()
    }

    /// Waits until each of `hosts` reports (in its host report) a policy ruleset in its
    /// kernel compiled from an intent revision above `after`, without an error; returns
    /// the reports' `policy` objects.
    ///
    /// `after` is [`Netmaster::revision`] read just before the last intent write the
    /// caller waits for: that write gets a higher revision, and a host's policy revision
    /// is the revision of the last intent change it applied (netmaster's revision also
    /// counts writes that are not intent, such as the host reports themselves, so a host
    /// need not ever reach it).
    pub fn wait_policy_after(&self, after: i64, hosts: &[&Netplugin]) -> Vec<serde_json::Value> {
        self.wait_policy_where(
            hosts,
            &format!("above intent revision {after}"),
            |pol, _| pol["revision"].as_i64().unwrap_or(0) > after,
        )
    }

    /// Runs netctl commands, then waits until each of `hosts` has a ruleset that
    /// includes the last one ([`Netmaster::wait_policy_after`]).
    pub fn change(&self, lines: &[&str], hosts: &[&Netplugin]) {
        let mut before = self.revision();
        for l in lines {
            before = self.revision();
            self.ok(l);
        }
        self.wait_policy_after(before, hosts);
    }

    /// Waits until each of `hosts` reports, in a report netmaster received after
    /// `since` (seconds since the epoch), a ruleset from intent revision `min` or later
    /// without an error: a restarted netplugin has programmed its ruleset.
    pub fn wait_policy_since(
        &self,
        since: u64,
        min: i64,
        hosts: &[&Netplugin],
    ) -> Vec<serde_json::Value> {
        self.wait_policy_where(
            hosts,
            &format!("at intent revision {min} or later, reported after {since}"),
            |pol, report| {
                report["lastSeen"].as_u64().unwrap_or(0) > since
                    && pol["revision"].as_i64().unwrap_or(0) >= min
            },
        )
    }

    fn wait_policy_where(
        &self,
        hosts: &[&Netplugin],
        what: &str,
        ok: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        hosts
            .iter()
            .map(|p| {
                wait_for(
                    &format!("{}'s policy ruleset {what}", p.host),
                    Duration::from_secs(60),
                    || {
                        let report = self.host_report(&p.host);
                        let pol = report["policy"].clone();
                        (ok(&pol, &report) && pol.get("error").is_none_or(|e| e.is_null()))
                            .then_some(pol)
                    },
                    || {
                        format!(
                            "report: {}\nlog:\n{}",
                            self.host_report(&p.host)["policy"],
                            p.log_tail()
                        )
                    },
                )
            })
            .collect()
    }
}

impl Drop for Netmaster {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.stop());
        }
    }
}

/// One netplugin process driving a lab host.
#[derive(Debug)]
pub struct Netplugin {
    pub host: String,
    pub netns: PathBuf,
    pub state_dir: PathBuf,
    pub cni_socket: PathBuf,
    pub log: PathBuf,
    pub docker_plugin_dir: Option<PathBuf>,
    pub docker_socket: Option<PathBuf>,
    /// More command-line arguments.
    pub extra_args: Vec<String>,
    /// netmaster's URL, its CA and this host's credential.
    pub netmaster: NetmasterLink,
    child: Option<Child>,
}

impl Netplugin {
    /// Starts netplugin for `host` (a node of `lab`), with its state under `dir`.
    pub fn start(
        lab: &containerlab::Lab,
        host: &str,
        netmaster: &Netmaster,
        dir: &Path,
    ) -> Netplugin {
        let mut p = Self::new(lab, host, netmaster, dir);
        p.spawn();
        p
    }

    /// Starts netplugin for `host` with more arguments.
    pub fn start_with_args(
        lab: &containerlab::Lab,
        host: &str,
        netmaster: &Netmaster,
        dir: &Path,
        args: &[&str],
    ) -> Netplugin {
        let mut p = Self::new(lab, host, netmaster, dir);
        p.extra_args = args.iter().map(|a| a.to_string()).collect();
        p.spawn();
        p
    }

    /// Starts netplugin for `host` serving the Docker drivers in `plugins_dir` for the
    /// dockerd at `socket`.
    pub fn start_with_docker(
        lab: &containerlab::Lab,
        host: &str,
        netmaster: &Netmaster,
        dir: &Path,
        plugins_dir: &Path,
        socket: &Path,
    ) -> Netplugin {
        let mut p = Self::new(lab, host, netmaster, dir);
        p.docker_plugin_dir = Some(plugins_dir.to_path_buf());
        p.docker_socket = Some(socket.to_path_buf());
        p.spawn();
        p
    }

    fn new(lab: &containerlab::Lab, host: &str, netmaster: &Netmaster, dir: &Path) -> Netplugin {
        let ns = lab.namespace(host).expect("node exists");
        let state_dir = dir.join(host);
        std::fs::create_dir_all(&state_dir).expect("state dir");
        let link = netmaster.link(host, &state_dir);
        Netplugin {
            host: host.to_string(),
            netns: PathBuf::from("/run/netns").join(ns),
            cni_socket: state_dir.join("netplugin.sock"),
            log: state_dir.join("netplugin.log"),
            state_dir,
            docker_plugin_dir: None,
            docker_socket: None,
            extra_args: Vec::new(),
            netmaster: link,
            child: None,
        }
    }

    /// Starts (again) the process.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "netplugin {} already runs", self.host);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(bin("netplugin"));
        match &self.docker_plugin_dir {
            Some(d) => cmd
                .arg("--docker-plugin-dir")
                .arg(d)
                .arg("--docker-socket")
                .arg(self.docker_socket.clone().unwrap_or_default()),
            None => cmd.arg("--no-docker"),
        };
        let child = cmd
            .arg("--host")
            .arg(&self.host)
            .arg("--netmaster")
            .arg(&self.netmaster.url)
            .arg("--netmaster-ca")
            .arg(&self.netmaster.ca)
            .arg("--token-file")
            .arg(&self.netmaster.token_file)
            .arg("--netns")
            .arg(&self.netns)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--cni-socket")
            .arg(&self.cni_socket)
            .arg("--metrics-listen")
            .arg("127.0.0.1:0")
            .arg("--dns-upstreams")
            .arg("none")
            .args(&self.extra_args)
            .env("RUST_LOG", "info,netplugin=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("netplugin starts");
        self.child = Some(child);
        let start = Instant::now();
        while !self.cni_socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "netplugin {} did not open its CNI socket; log:\n{}",
                self.host,
                self.log_tail()
            );
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!(
                    "netplugin {} exited ({st}); log:\n{}",
                    self.host,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the process without letting it clean up (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The address of the metrics endpoint, from the log line netplugin prints once it
    /// is bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines().rev().find_map(|l| {
            let rest = l.split("metrics: http://").nth(1)?;
            rest.split('/').next()?.parse().ok()
        })
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Calls the real CNI plugin binary as a runtime would.
    pub fn cni(
        &self,
        command: &str,
        container_id: &str,
        netns: &str,
        ifname: &str,
        conf: &str,
    ) -> Output {
        self.cni_with_args(command, container_id, netns, ifname, conf, "")
    }

    /// [`Netplugin::cni`] with `CNI_ARGS` (`K8S_POD_NAME=web;...`).
    pub fn cni_with_args(
        &self,
        command: &str,
        container_id: &str,
        netns: &str,
        ifname: &str,
        conf: &str,
        cni_args: &str,
    ) -> Output {
        use std::io::Write;
        let mut child = Command::new(bin("contiv-cni"))
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_ARGS", cni_args)
            .env("CNI_PATH", bin("contiv-cni").parent().expect("dir"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("contiv-cni runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(conf.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("contiv-cni output")
    }

    /// A CNI network configuration for this host's socket.
    pub fn netconf(&self, network: &str, group: Option<&str>) -> String {
        self.netconf_in("default", network, group)
    }

    /// A CNI network configuration of a network of `tenant` for this host's socket.
    pub fn netconf_in(&self, tenant: &str, network: &str, group: Option<&str>) -> String {
        let mut v = serde_json::json!({
            "cniVersion": "1.1.0",
            "name": network,
            "type": "contiv-cni",
            "tenant": tenant,
            "network": network,
            "netplugin_socket": self.cni_socket,
        });
        if let Some(g) = group {
            v["group"] = serde_json::json!(g);
        }
        v.to_string()
    }
}

impl Drop for Netplugin {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A container's network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct ContainerNs {
    pub name: String,
}

impl ContainerNs {
    pub fn new(name: &str) -> ContainerNs {
        let o = Command::new("ip")
            .args(["netns", "add", name])
            .output()
            .expect("ip netns add");
        assert!(
            o.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        ContainerNs {
            name: name.to_string(),
        }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for ContainerNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs a command inside a lab node's namespace (as `contiv-lab exec` does).
pub fn node_exec(lab: &containerlab::Lab, node: &str, cmd: &str) -> Output {
    lab.exec(node, cmd).expect("lab exec")
}

/// Polls `f` until it returns `Some`, or panics after `within` with `what` and the last
/// value `describe` gives.
pub fn wait_for<T>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            if start.elapsed() > Duration::from_secs(5) {
                eprintln!("{what}: reached after {:?}", start.elapsed());
            }
            return v;
        }
        if start.elapsed() > within {
            panic!("{what}: not reached in {within:?}; {}", describe());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// FRR's BFD state of a peer (`status` in `show bfd peers json` output), empty when
/// FRR does not know the peer.
pub fn frr_bfd_status(show_bfd_peers_json: &str, peer: &str) -> String {
    serde_json::from_str::<serde_json::Value>(show_bfd_peers_json)
        .ok()
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|p| p.get("peer").and_then(|a| a.as_str()) == Some(peer))?
                .get("status")?
                .as_str()
                .map(String::from)
        })
        .unwrap_or_default()
}

/// The routes of a lab router (FRR) as `prefix → next hops`, from `vtysh`.
pub fn frr_routes(lab: &containerlab::Lab, node: &str) -> BTreeMap<String, Vec<String>> {
    let o = node_exec(lab, node, "vtysh -c 'show ip route json'");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let mut out = BTreeMap::new();
    if let Some(m) = v.as_object() {
        for (prefix, entries) in m {
            let hops = entries
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["selected"].as_bool().unwrap_or(false))
                .flat_map(|e| e["nexthops"].as_array().cloned().unwrap_or_default())
                .filter_map(|n| n["ip"].as_str().map(String::from))
                .collect();
            out.insert(prefix.clone(), hops);
        }
    }
    out
}

/// A plain HTTP/1.0 GET on loopback (netplugin's `/metrics`, Prometheus; netmaster
/// answers HTTPS only: [`Netmaster::get`]); returns the body of a 200 answer.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then_some(())
        .or_else(|| head.starts_with("HTTP/1.0 200").then_some(()))?;
    Some(body.to_string())
}

/// A free TCP port on loopback (bound and released; good enough for a daemon started
/// right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fabric from `topologies/` deployed under its own lab name, destroyed on drop.
///
/// Its hosts are checked to have no route but the kernel's own (their links): whatever a
/// cluster test then sees forwarded between hosts went through routes netplugin
/// installed, never through something the lab set up.
pub fn deploy(fabric: &str, tag: &str) -> containerlab::lab::LabGuard {
    let lab = crate::fabric_lab(fabric, tag)
        .deploy_guarded(&containerlab::lab::DeployOptions::default())
        .expect("deploy");
    for host in crate::host_nodes(&lab) {
        let routes = crate::non_kernel_routes(&lab, &host);
        assert!(
            routes.is_empty(),
            "topologies/{fabric}: host {host} starts with routes the lab installed, which \
             compete with the routes netplugin learns over BGP; remove them from the host's \
             `exec` lines:\n{}",
            routes.join("\n")
        );
    }
    lab
}

/// How a lab node's kernel forwards to one address: the FIB entry it matches (`ip route
/// get fibmatch`), that entry's protocol and next hops, the next hop it picks for a flow
/// from the node itself (`ip route get`), and every route of another protocol that
/// covers the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPath {
    /// The destination asked about.
    pub dst: std::net::Ipv4Addr,
    /// The matched FIB entry's prefix (`default`, `20.1.1.2`, `20.1.1.0/24`).
    pub prefix: String,
    /// The matched entry's protocol as `ip` prints it (`200`, `kernel`, `boot` ...).
    pub protocol: String,
    /// The matched entry's gateways (one, or each ECMP next hop).
    pub gateways: std::collections::BTreeSet<String>,
    /// The gateway the kernel picks for `ip route get <dst>`.
    pub chosen: Option<String>,
    /// Routes not of protocol 200 (any table) whose prefix contains `dst`, as JSON text.
    pub others: Vec<String>,
}

/// netplugin's route protocol number.
pub const NETPLUGIN_PROTO: &str = "200";

impl KernelPath {
    /// True when the kernel forwards by netplugin's route (protocol 200) over exactly
    /// `gateways`, picks one of them, and no other route covers the address.
    pub fn is_netplugins_via(&self, gateways: &[&str]) -> bool {
        let want: std::collections::BTreeSet<String> =
            gateways.iter().map(|g| g.to_string()).collect();
        self.protocol == NETPLUGIN_PROTO
            && self.gateways == want
            && self.chosen.as_ref().is_some_and(|c| want.contains(c))
            && self.others.is_empty()
    }
}

fn ip_json(lab: &containerlab::Lab, node: &str, args: &str) -> Vec<serde_json::Value> {
    let o = node_exec(lab, node, &format!("ip -j {args}"));
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Whether `prefix` as `ip -j route` prints it (`default`, `a.b.c.d`, `a.b.c.d/n`)
/// contains `addr`.
fn covers(prefix: &str, addr: std::net::Ipv4Addr) -> bool {
    if prefix == "default" {
        return true;
    }
    let (net, len) = prefix.split_once('/').unwrap_or((prefix, "32"));
    let (Ok(net), Ok(len)) = (net.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
        return false;
    };
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    };
    u32::from(net) & mask == u32::from(addr) & mask
}

/// The route a lab node's kernel uses for `dst`; see [`KernelPath`].
pub fn kernel_path(lab: &containerlab::Lab, node: &str, dst: &str) -> KernelPath {
    let addr: std::net::Ipv4Addr = dst.parse().expect("an IPv4 address");
    let fib = ip_json(lab, node, &format!("route get fibmatch {dst}"));
    let entry = fib.first().cloned().unwrap_or_default();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let gateways = match entry["nexthops"].as_array() {
        Some(hops) => hops.iter().map(|h| text(&h["gateway"])).collect(),
        None => [text(&entry["gateway"])]
            .into_iter()
            .filter(|g| !g.is_empty())
            .collect(),
    };
    let chosen = ip_json(lab, node, &format!("route get {dst}"))
        .first()
        .map(|r| text(&r["gateway"]))
        .filter(|g| !g.is_empty());
    let others = ip_json(lab, node, "-4 route show table all")
        .into_iter()
        .filter(|r| text(&r["protocol"]) != NETPLUGIN_PROTO && covers(&text(&r["dst"]), addr))
        .map(|r| r.to_string())
        .collect();
    KernelPath {
        dst: addr,
        prefix: text(&entry["dst"]),
        // `ip` leaves `protocol` out for `boot`, what `ip route add` uses by default.
        protocol: match text(&entry["protocol"]) {
            p if p.is_empty() && !entry.is_null() => "boot".to_string(),
            p => p,
        },
        gateways,
        chosen,
        others,
    }
}

/// Waits until `node` forwards to `dst` by netplugin's route over exactly `gateways`
/// (see [`KernelPath::is_netplugins_via`]) and returns that path; on timeout panics with
/// the last path seen and the node's whole routing table.
pub fn wait_netplugin_path(
    lab: &containerlab::Lab,
    node: &str,
    dst: &str,
    gateways: &[&str],
) -> KernelPath {
    wait_for(
        &format!("{node} forwards to {dst} by netplugin's route (proto 200) via {gateways:?} only"),
        Duration::from_secs(60),
        || {
            let p = kernel_path(lab, node, dst);
            p.is_netplugins_via(gateways).then_some(p)
        },
        || {
            format!(
                "last: {:?}\n{node}'s routes:\n{}",
                kernel_path(lab, node, dst),
                ip_route(lab, node, "table all")
            )
        },
    )
}

/// The address a CNI ADD result gives the container (panics with the result on failure).
pub fn cni_ip(out: &Output) -> String {
    assert!(
        out.status.success(),
        "CNI ADD failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("CNI result is JSON");
    let a = v["ips"][0]["address"].as_str().expect("an address");
    a.split('/').next().unwrap_or(a).to_string()
}

impl Netplugin {
    /// CNI ADD of container `id` (interface `eth0`) on `network`; returns its address.
    pub fn add(&self, c: &ContainerNs, id: &str, network: &str) -> String {
        cni_ip(&self.cni("ADD", id, &c.path(), "eth0", &self.netconf(network, None)))
    }

    /// CNI ADD of container `id` (interface `eth0`) on `tenant`'s `network`, in endpoint
    /// group `group` when given; returns its address.
    pub fn add_in(
        &self,
        c: &ContainerNs,
        id: &str,
        tenant: &str,
        network: &str,
        group: Option<&str>,
    ) -> String {
        cni_ip(&self.cni(
            "ADD",
            id,
            &c.path(),
            "eth0",
            &self.netconf_in(tenant, network, group),
        ))
    }

    /// A sample of netplugin's `/metrics` (`name{labels} value` lines): the value of the
    /// first line that starts with `name{` and has every one of `labels` (`k="v"`);
    /// 0 when there is none.
    pub fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let Some(addr) = self.metrics_addr() else {
            return 0.0;
        };
        let text = http_get(addr, "/metrics").unwrap_or_default();
        metric_value(&text, name, labels).unwrap_or(0.0)
    }
}

impl ContainerNs {
    /// One ping to `ip` answered within a second.
    pub fn pings(&self, ip: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "1", ip])
            .status
            .success()
    }
}

/// `ip route show <what>` inside a lab node.
pub fn ip_route(lab: &containerlab::Lab, node: &str, what: &str) -> String {
    String::from_utf8_lossy(&node_exec(lab, node, &format!("ip route show {what}")).stdout)
        .into_owned()
}

/// A lab host running Docker: a private dockerd in the host's namespace (busybox
/// imported, its resolver pointed at the host's netplugin at `router_ip`) and a netplugin
/// serving it the network and IPAM drivers.
pub fn docker_host(
    lab: &containerlab::Lab,
    host: &str,
    router_ip: &str,
    netmaster: &Netmaster,
    dir: &Path,
) -> (crate::docker::Dockerd, Netplugin) {
    let ns = PathBuf::from("/run/netns").join(lab.namespace(host).expect("node"));
    let d = crate::docker::Dockerd::start_with_config(
        &ns,
        &dir.join(format!("d-{host}")),
        &format!("{{\"dns\": [\"{router_ip}\"]}}"),
    )
    .expect("dockerd starts");
    d.import_busybox().expect("busybox image");
    let p = Netplugin::start_with_docker(lab, host, netmaster, dir, &d.plugins_dir(), &d.socket());
    (d, p)
}

/// The quick start with Docker, up to its first network: routing mode and each host's
/// `Bgp` object as netctl lines, then a dockerd and a netplugin driving it on host1 and
/// host2 (each dockerd's DNS is its host's router address).
pub fn quickstart_docker(
    lab: &containerlab::Lab,
    nm: &Netmaster,
    dir: &Path,
) -> Vec<(crate::docker::Dockerd, Netplugin)> {
    nm.ok("netctl global set --fwd-mode routing");
    nm.ok("netctl bgp create host1 --router-ip=10.1.1.1/31 --as=65101 --neighbor-as=65001 --neighbor=10.1.1.0");
    nm.ok("netctl bgp create host2 --router-ip=10.1.2.1/31 --as=65102 --neighbor-as=65002 --neighbor=10.1.2.0");
    [("host1", "10.1.1.1"), ("host2", "10.1.2.1")]
        .into_iter()
        .map(|(host, router)| docker_host(lab, host, router, nm, dir))
        .collect()
}

/// The value of the first sample in Prometheus text `text` named `name` that has every
/// one of `labels` (`k="v"`).
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse().ok())
                .flatten()
        })
        .next()
}

/// `nft list table <family> <name>` inside a lab node; `None` when the table is not
/// there (or nft fails).
pub fn nft_table(lab: &containerlab::Lab, node: &str, family: &str, name: &str) -> Option<String> {
    let o = node_exec(lab, node, &format!("nft list table {family} {name}"));
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `nft list ruleset` inside a lab node.
pub fn nft_ruleset(lab: &containerlab::Lab, node: &str) -> String {
    String::from_utf8_lossy(&node_exec(lab, node, "nft list ruleset").stdout).into_owned()
}
