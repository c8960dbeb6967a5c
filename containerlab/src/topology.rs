//! Parsing and validation of containerlab topology files (`*.clab.yml`).
//!
//! The schema is containerlab's own: `name`, `prefix`, `topology.{defaults,kinds,groups,
//! nodes,links}`. Node settings are merged as containerlab merges them: `defaults`, then
//! the node's `group`, then its `kind`, then the node itself (scalars override, lists
//! append, maps merge). Fields that only matter to a container engine (`mgmt-ipv4`,
//! `ports`, `cpu`, ...) are accepted and ignored, so the same files deploy unchanged with
//! the real containerlab; anything else unknown is an error, so a typo never passes.
//!
//! Everything here is pure apart from checking that bound files exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::daemon::DaemonKind;
use crate::error::{Error, Result};

/// The node kinds the runner deploys. containerlab's `linux` kind is a plain container;
/// here it is a network namespace, optionally running a routing daemon.
pub const SUPPORTED_KINDS: &[&str] = &["linux"];

/// A validated, fully resolved topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The lab name (`name:`).
    pub name: String,
    /// How namespaces are named (containerlab's `prefix:`).
    pub prefix: NamePrefix,
    /// The topology file, absolute.
    pub file: PathBuf,
    /// Nodes in file order.
    pub nodes: Vec<Node>,
    /// Links in file order.
    pub links: Vec<Link>,
}

/// containerlab's `prefix:` setting, which decides namespace (container) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePrefix {
    /// `<prefix>-<lab>-<node>`; `clab` when the file sets no prefix.
    Prefix(String),
    /// `prefix: __lab-name`: `<lab>-<node>`.
    LabName,
    /// `prefix: ""`: the node name alone.
    None,
}

/// A node after merging defaults, groups and kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub kind: String,
    pub image: String,
    /// Which routing daemon runs in the node (from a label or the image name).
    pub daemon: DaemonKind,
    pub binds: Vec<Bind>,
    pub exec: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub startup_config: Option<PathBuf>,
    pub sysctls: BTreeMap<String, String>,
}

/// A `binds:` entry: a host file made visible at a path inside the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Absolute path on this machine (relative paths are relative to the topology file).
    pub source: PathBuf,
    /// The path inside the node, as a container would see it.
    pub target: String,
}

/// A point-to-point link: a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
    pub mtu: Option<u32>,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node: String,
    pub interface: String,
    pub mac: Option<String>,
}

/// The label that selects a node's daemon explicitly (`frr`, `bird`, `gobgp`, `exabgp`,
/// `none`), overriding the guess from the image name.
pub const DAEMON_LABEL: &str = "contiv-lab.daemon";

impl Topology {
    /// Reads, parses and validates a topology file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Topology> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        Topology::parse(&text, &abs)
    }

    /// Parses and validates topology text; `file` names it in errors and anchors
    /// relative bind paths.
    pub fn parse(text: &str, file: &Path) -> Result<Topology> {
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| Error::Parse {
            file: file.to_path_buf(),
            message: format!("not a containerlab topology: {e}"),
        })?;
        resolve(raw, file)
    }

    /// The namespace (containerlab: container) name of a node.
    pub fn namespace(&self, node: &str) -> String {
        match &self.prefix {
            NamePrefix::Prefix(p) => format!("{p}-{}-{node}", self.name),
            NamePrefix::LabName => format!("{}-{node}", self.name),
            NamePrefix::None => node.to_string(),
        }
    }

    /// Looks a node up by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

impl Node {
    /// The bind whose target is `target`, if any.
    pub fn bind_for(&self, target: &str) -> Option<&Bind> {
        self.binds.iter().find(|b| b.target == target)
    }
}

// ---------------------------------------------------------------------------------------
// The raw schema.

// Fields that only matter to a container engine are read so they are accepted, never used.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    #[serde(default)]
    prefix: Option<String>,
    topology: RawTopology,
    // Container-engine settings, accepted and ignored.
    #[serde(default)]
    mgmt: Option<serde_norway::Value>,
    #[serde(default)]
    settings: Option<serde_norway::Value>,
    #[serde(default)]
    debug: Option<serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    defaults: RawNode,
    #[serde(default)]
    kinds: BTreeMap<String, RawNode>,
    #[serde(default)]
    groups: BTreeMap<String, RawNode>,
    #[serde(default)]
    nodes: serde_norway::Mapping,
    #[serde(default)]
    links: Vec<RawLink>,
}

/// A scalar YAML value (string, number or bool) read as a string, as containerlab does for
/// `env`, `labels` and `sysctls`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[allow(dead_code)]
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    kind: Option<String>,
    group: Option<String>,
    image: Option<String>,
    binds: Option<Vec<String>>,
    exec: Option<Vec<String>>,
    env: Option<BTreeMap<String, Scalar>>,
    labels: Option<BTreeMap<String, Scalar>>,
    startup_config: Option<String>,
    sysctls: Option<BTreeMap<String, Scalar>>,
    // containerlab fields that only matter to a container engine: accepted, ignored.
    #[serde(default)]
    mgmt_ipv4: Option<serde_norway::Value>,
    #[serde(default)]
    mgmt_ipv6: Option<serde_norway::Value>,
    #[serde(default)]
    ports: Option<serde_norway::Value>,
    #[serde(default)]
    cmd: Option<serde_norway::Value>,
    #[serde(default)]
    entrypoint: Option<serde_norway::Value>,
    #[serde(default)]
    user: Option<serde_norway::Value>,
    #[serde(default)]
    cpu: Option<serde_norway::Value>,
    #[serde(default)]
    cpu_set: Option<serde_norway::Value>,
    #[serde(default)]
    memory: Option<serde_norway::Value>,
    #[serde(default)]
    network_mode: Option<serde_norway::Value>,
    #[serde(default)]
    dns: Option<serde_norway::Value>,
    #[serde(default)]
    extras: Option<serde_norway::Value>,
    #[serde(default)]
    healthcheck: Option<serde_norway::Value>,
    #[serde(default)]
    image_pull_policy: Option<serde_norway::Value>,
    #[serde(default)]
    restart_policy: Option<serde_norway::Value>,
    #[serde(default)]
    stages: Option<serde_norway::Value>,
    #[serde(default)]
    wait_for: Option<serde_norway::Value>,
    #[serde(default)]
    runtime: Option<serde_norway::Value>,
    #[serde(default)]
    auto_remove: Option<serde_norway::Value>,
    #[serde(default)]
    enforce_startup_config: Option<serde_norway::Value>,
    #[serde(default)]
    suppress_startup_config: Option<serde_norway::Value>,
}

impl RawNode {
    /// Overlays `top` on `self`: scalars replace, lists append, maps merge.
    fn overlay(mut self, top: &RawNode) -> RawNode {
        fn scalar(base: &mut Option<String>, top: &Option<String>) {
            if top.is_some() {
                base.clone_from(top);
            }
        }
        fn list(base: &mut Option<Vec<String>>, top: &Option<Vec<String>>) {
            if let Some(t) = top {
                base.get_or_insert_with(Vec::new).extend(t.iter().cloned());
            }
        }
        fn map(
            base: &mut Option<BTreeMap<String, Scalar>>,
            top: &Option<BTreeMap<String, Scalar>>,
        ) {
            if let Some(t) = top {
                base.get_or_insert_with(BTreeMap::new)
                    .extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        scalar(&mut self.kind, &top.kind);
        scalar(&mut self.group, &top.group);
        scalar(&mut self.image, &top.image);
        scalar(&mut self.startup_config, &top.startup_config);
        list(&mut self.binds, &top.binds);
        list(&mut self.exec, &top.exec);
        map(&mut self.env, &top.env);
        map(&mut self.labels, &top.labels);
        map(&mut self.sysctls, &top.sysctls);
        self
    }
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    endpoints: Vec<RawEndpoint>,
    #[serde(default, rename = "type")]
    link_type: Option<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    vars: Option<serde_norway::Value>,
    #[serde(default)]
    labels: Option<serde_norway::Value>,
}

/// `"node:iface"` (the brief form) or `{node, interface, mac}` (the extended form).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawEndpoint {
    Brief(String),
    Extended {
        node: String,
        interface: String,
        #[serde(default)]
        mac: Option<String>,
    },
}

// ---------------------------------------------------------------------------------------
// Resolution and validation.

fn resolve(raw: RawFile, file: &Path) -> Result<Topology> {
    let invalid = |message: String| Error::Invalid {
        file: file.to_path_buf(),
        message,
    };
    let dir = file.parent().unwrap_or(Path::new("/"));

    check_name("lab name", &raw.name).map_err(&invalid)?;
    let prefix = match raw.prefix.as_deref() {
        None => NamePrefix::Prefix("clab".into()),
        Some("__lab-name") => NamePrefix::LabName,
        Some("") => NamePrefix::None,
        Some(p) => {
            check_name("prefix", p).map_err(&invalid)?;
            NamePrefix::Prefix(p.into())
        }
    };

    let topo = raw.topology;
    let mut nodes = Vec::new();
    let mut seen = BTreeSet::new();
    if topo.nodes.is_empty() {
        return Err(invalid(
            "topology.nodes is empty: a lab needs at least one node".into(),
        ));
    }
    for (key, value) in topo.nodes {
        let name = match key {
            serde_norway::Value::String(s) => s,
            other => return Err(invalid(format!("node name {other:?} is not a string"))),
        };
        check_name(&format!("node name '{name}'"), &name).map_err(&invalid)?;
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("node '{name}' is defined twice")));
        }
        let own: RawNode = if value.is_null() {
            RawNode::default()
        } else {
            serde_norway::from_value(value).map_err(|e| Error::Parse {
                file: file.to_path_buf(),
                message: format!("node '{name}': {e}"),
            })?
        };
        let mut merged = topo.defaults.clone();
        let group = own.group.clone().or_else(|| merged.group.clone());
        if let Some(g) = &group {
            let g_node = topo
                .groups
                .get(g)
                .ok_or_else(|| invalid(format!("node '{name}': unknown group '{g}'")))?;
            merged = merged.overlay(g_node);
        }
        let kind = own
            .kind
            .clone()
            .or_else(|| merged.kind.clone())
            .ok_or_else(|| invalid(format!("node '{name}' has no kind")))?;
        if !SUPPORTED_KINDS.contains(&kind.as_str()) {
            return Err(invalid(format!(
                "node '{name}': unknown kind '{kind}' (contiv-lab deploys: {})",
                SUPPORTED_KINDS.join(", ")
            )));
        }
        if let Some(k) = topo.kinds.get(&kind) {
            merged = merged.overlay(k);
        }
        let merged = merged.overlay(&own);
        nodes.push(resolve_node(name, kind, merged, dir).map_err(&invalid)?);
    }
    for k in topo.kinds.keys() {
        if !SUPPORTED_KINDS.contains(&k.as_str()) {
            return Err(invalid(format!(
                "topology.kinds: unknown kind '{k}' (contiv-lab deploys: {})",
                SUPPORTED_KINDS.join(", ")
            )));
        }
    }

    let mut links = Vec::new();
    let mut used: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, raw_link) in topo.links.into_iter().enumerate() {
        let n = i + 1;
        if let Some(t) = raw_link.link_type.as_deref()
            && t != "veth"
        {
            return Err(invalid(format!(
                "link {n}: type '{t}' is not supported (contiv-lab creates veth links only)"
            )));
        }
        if raw_link.endpoints.len() != 2 {
            return Err(invalid(format!(
                "link {n}: needs exactly 2 endpoints, has {}",
                raw_link.endpoints.len()
            )));
        }
        if let Some(mtu) = raw_link.mtu
            && !(68..=65535).contains(&mtu)
        {
            return Err(invalid(format!(
                "link {n}: mtu {mtu} is out of range 68..65535"
            )));
        }
        let mut ends = Vec::with_capacity(2);
        for ep in raw_link.endpoints {
            let ep = endpoint(ep).map_err(|m| invalid(format!("link {n}: {m}")))?;
            if !seen.contains(&ep.node) {
                return Err(invalid(format!(
                    "link {n}: endpoint '{}:{}' names node '{}', which is not in topology.nodes",
                    ep.node, ep.interface, ep.node
                )));
            }
            if let Some(prev) = used.insert((ep.node.clone(), ep.interface.clone()), n) {
                return Err(invalid(format!(
                    "link {n}: interface '{}:{}' is already used by link {prev}",
                    ep.node, ep.interface
                )));
            }
            ends.push(ep);
        }
        let b = ends.pop().expect("two endpoints");
        let a = ends.pop().expect("two endpoints");
        links.push(Link {
            a,
            b,
            mtu: raw_link.mtu,
        });
    }

    Ok(Topology {
        name: raw.name,
        prefix,
        file: file.to_path_buf(),
        nodes,
        links,
    })
}

fn resolve_node(name: String, kind: String, raw: RawNode, dir: &Path) -> Result<Node, String> {
    let image = raw.image.unwrap_or_default();
    let labels: BTreeMap<String, String> = raw
        .labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
    let daemon = match labels.get(DAEMON_LABEL) {
        Some(d) => d
            .parse::<DaemonKind>()
            .map_err(|e| format!("node '{name}': {e}"))?,
        None => DaemonKind::from_image(&image),
    };
    let mut binds = Vec::new();
    for spec in raw.binds.unwrap_or_default() {
        binds.push(bind(&spec, dir).map_err(|m| format!("node '{name}': {m}"))?);
    }
    let startup_config = match raw.startup_config {
        None => None,
        Some(p) => {
            let path = dir.join(&p);
            if !path.is_file() {
                return Err(format!(
                    "node '{name}': startup-config file {} does not exist",
                    path.display()
                ));
            }
            Some(path)
        }
    };
    let env: BTreeMap<String, String> = raw
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
    for k in env.keys() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(format!("node '{name}': env name '{k}' is not valid"));
        }
    }
    let sysctls: BTreeMap<String, String> = raw
        .sysctls
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
    for k in sysctls.keys() {
        if !k.starts_with("net.") || k.contains("..") || k.contains('/') {
            return Err(format!(
                "node '{name}': sysctl '{k}' is not a per-namespace net.* setting"
            ));
        }
    }
    let node = Node {
        name,
        kind,
        image,
        daemon,
        binds,
        exec: raw.exec.unwrap_or_default(),
        env,
        labels,
        startup_config,
        sysctls,
    };
    crate::daemon::check_node(&node)?;
    Ok(node)
}

fn bind(spec: &str, dir: &Path) -> Result<Bind, String> {
    let mut parts = spec.split(':');
    let (Some(src), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "bind '{spec}' is not of the form source:target[:mode]"
        ));
    };
    if let Some(mode) = parts.next()
        && !matches!(mode, "ro" | "rw" | "z" | "Z" | "ro,z" | "ro,Z")
    {
        return Err(format!("bind '{spec}': unknown mode '{mode}'"));
    }
    if parts.next().is_some() || src.is_empty() || !target.starts_with('/') {
        return Err(format!(
            "bind '{spec}' is not of the form source:/target[:mode]"
        ));
    }
    let source = dir.join(src);
    if !source.exists() {
        return Err(format!(
            "bind '{spec}': source {} does not exist",
            source.display()
        ));
    }
    Ok(Bind {
        source,
        target: target.to_string(),
    })
}

fn endpoint(raw: RawEndpoint) -> Result<Endpoint, String> {
    let (node, interface, mac) = match raw {
        RawEndpoint::Brief(s) => {
            let Some((node, iface)) = s.split_once(':') else {
                return Err(format!("endpoint '{s}' is not of the form node:interface"));
            };
            (node.to_string(), iface.to_string(), None)
        }
        RawEndpoint::Extended {
            node,
            interface,
            mac,
        } => (node, interface, mac),
    };
    if matches!(
        node.as_str(),
        "host" | "mgmt-net" | "macvlan" | "bridge" | "ovs-bridge"
    ) {
        return Err(format!(
            "endpoint '{node}:{interface}' reaches outside the lab; contiv-lab never touches the machine's own network namespace"
        ));
    }
    check_interface(&interface).map_err(|m| format!("endpoint '{node}:{interface}': {m}"))?;
    if let Some(m) = &mac {
        check_mac(m).map_err(|e| format!("endpoint '{node}:{interface}': {e}"))?;
    }
    Ok(Endpoint {
        node,
        interface,
        mac,
    })
}

pub(crate) fn check_name(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > 64 {
        return Err(format!("{what} '{s}' is longer than 64 characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || s.starts_with('.')
    {
        return Err(format!(
            "{what} '{s}' may contain only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Linux interface name rules: 1..15 bytes, no '/', ':' or white space, not `.`/`..`,
/// and not `lo`, which every namespace already has.
pub fn check_interface(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err("an interface name needs 1 to 15 characters".into());
    }
    if name == "." || name == ".." || name == "lo" {
        return Err(format!("'{name}' cannot be used as a link interface"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err("an interface name may not contain '/', ':' or white space".into());
    }
    Ok(())
}

fn check_mac(mac: &str) -> Result<(), String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("'{mac}' is not a MAC address"));
    }
    let first = u8::from_str_radix(parts[0], 16).map_err(|e| e.to_string())?;
    if first & 1 == 1 {
        return Err(format!("'{mac}' is a multicast MAC address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with the files the fixtures bind.
    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("frr.conf"), "hostname r1\n").unwrap();
        std::fs::write(d.path().join("gobgpd.toml"), "[global.config]\n").unwrap();
        d
    }

    fn parse(d: &tempfile::TempDir, yaml: &str) -> Result<Topology> {
        Topology::parse(yaml, &d.path().join("t.clab.yml"))
    }

    fn err(d: &tempfile::TempDir, yaml: &str) -> String {
        let e = parse(d, yaml).expect_err("must be refused").to_string();
        assert!(e.contains("t.clab.yml"), "error names the file: {e}");
        e
    }

    const GOOD: &str = r#"
name: lab1
topology:
  defaults:
    env: { A: "1" }
  kinds:
    linux:
      image: alpine:3.20
      exec: ["echo kind"]
  nodes:
    r1:
      kind: linux
      image: quay.io/frrouting/frr:8.4.1
      binds: [frr.conf:/etc/frr/frr.conf]
      mgmt-ipv4: 172.20.20.2
    h1:
      kind: linux
      env: { B: 2 }
      exec: ["echo node"]
  links:
    - endpoints: ["r1:eth1", "h1:eth1"]
    - type: veth
      endpoints:
        - { node: r1, interface: eth2, mac: "02:00:00:00:00:01" }
        - { node: h1, interface: eth2 }
      mtu: 9000
"#;

    #[test]
    fn good_topology_resolves() {
        let d = dir();
        let t = parse(&d, GOOD).unwrap();
        assert_eq!(t.name, "lab1");
        assert_eq!(t.namespace("r1"), "clab-lab1-r1");
        let r1 = t.node("r1").unwrap();
        assert_eq!(r1.daemon, DaemonKind::Frr);
        assert_eq!(
            r1.image, "quay.io/frrouting/frr:8.4.1",
            "the node's image wins"
        );
        assert_eq!(r1.binds[0].source, d.path().join("frr.conf"));
        let h1 = t.node("h1").unwrap();
        assert_eq!(h1.image, "alpine:3.20", "the kind's image applies");
        assert_eq!(h1.daemon, DaemonKind::None);
        assert_eq!(h1.exec, vec!["echo kind", "echo node"], "lists append");
        assert_eq!(h1.env["A"], "1");
        assert_eq!(h1.env["B"], "2", "numbers are read as strings");
        assert_eq!(t.links.len(), 2);
        assert_eq!(t.links[1].a.mac.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(t.links[1].mtu, Some(9000));
    }

    #[test]
    fn prefixes_name_namespaces_like_containerlab() {
        let d = dir();
        let with =
            |p: &str| GOOD.replacen("name: lab1\n", &format!("name: lab1\nprefix: {p}\n"), 1);
        assert_eq!(parse(&d, &with("\"\"")).unwrap().namespace("h1"), "h1");
        assert_eq!(
            parse(&d, &with("__lab-name")).unwrap().namespace("h1"),
            "lab1-h1"
        );
        assert_eq!(
            parse(&d, &with("ctl")).unwrap().namespace("h1"),
            "ctl-lab1-h1"
        );
    }

    #[test]
    fn groups_and_labels() {
        let d = dir();
        let yaml = r#"
name: g
topology:
  groups:
    routers:
      kind: linux
      image: jauderho/gobgp:v3.10.0
      binds: [gobgpd.toml:/etc/gobgp/gobgpd.toml]
  nodes:
    r1: { group: routers }
    r2: { group: routers, labels: { contiv-lab.daemon: none } }
"#;
        let t = parse(&d, yaml).unwrap();
        assert_eq!(t.node("r1").unwrap().daemon, DaemonKind::Gobgp);
        assert_eq!(
            t.node("r2").unwrap().daemon,
            DaemonKind::None,
            "the label wins"
        );
    }

    #[test]
    fn malformed_yaml() {
        let d = dir();
        let e = err(&d, "name: [unclosed\n");
        assert!(e.contains("not a containerlab topology"), "{e}");
    }

    #[test]
    fn missing_name_and_unknown_fields() {
        let d = dir();
        assert!(err(&d, "topology: { nodes: { a: { kind: linux } } }\n").contains("name"));
        let e = err(&d, "name: x\ntopolgy: {}\n");
        assert!(e.contains("topolgy"), "{e}");
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    a: { kind: linux, bindz: [] }\n",
        );
        assert!(e.contains("node 'a'") && e.contains("bindz"), "{e}");
    }

    #[test]
    fn bad_names() {
        let d = dir();
        assert!(
            err(
                &d,
                "name: 'a b'\ntopology: { nodes: { a: { kind: linux } } }\n"
            )
            .contains("lab name")
        );
        assert!(
            err(
                &d,
                "name: x\ntopology: { nodes: { 'a/b': { kind: linux } } }\n"
            )
            .contains("node name")
        );
        assert!(err(&d, "name: x\ntopology: { nodes: {} }\n").contains("at least one node"));
    }

    #[test]
    fn unknown_kind() {
        let d = dir();
        let e = err(
            &d,
            "name: x\ntopology: { nodes: { a: { kind: nokia_srlinux } } }\n",
        );
        assert!(
            e.contains("node 'a'") && e.contains("unknown kind 'nokia_srlinux'"),
            "{e}"
        );
        let e = err(
            &d,
            "name: x\ntopology: { nodes: { a: { image: alpine } } }\n",
        );
        assert!(e.contains("node 'a' has no kind"), "{e}");
    }

    #[test]
    fn link_to_missing_node() {
        let d = dir();
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes: { a: { kind: linux } }\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        );
        assert!(e.contains("link 1") && e.contains("node 'b'"), "{e}");
    }

    #[test]
    fn interface_used_twice() {
        let d = dir();
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes: { a: { kind: linux }, b: { kind: linux }, c: { kind: linux } }\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\", \"c:eth1\"]\n",
        );
        assert!(
            e.contains("link 2") && e.contains("'a:eth1' is already used by link 1"),
            "{e}"
        );
    }

    #[test]
    fn bad_endpoints() {
        let d = dir();
        let base =
            "name: x\ntopology:\n  nodes: { a: { kind: linux }, b: { kind: linux } }\n  links:\n";
        let e = err(
            &d,
            &format!("{base}    - endpoints: [\"a-eth1\", \"b:eth1\"]\n"),
        );
        assert!(e.contains("node:interface"), "{e}");
        let e = err(&d, &format!("{base}    - endpoints: [\"a:eth1\"]\n"));
        assert!(e.contains("exactly 2 endpoints"), "{e}");
        let e = err(
            &d,
            &format!("{base}    - endpoints: [\"a:averyveryverylongname\", \"b:eth1\"]\n"),
        );
        assert!(e.contains("1 to 15 characters"), "{e}");
        let e = err(
            &d,
            &format!("{base}    - endpoints: [\"a:lo\", \"b:eth1\"]\n"),
        );
        assert!(e.contains("'lo'"), "{e}");
        let e = err(
            &d,
            &format!("{base}    - endpoints: [\"a:eth1\", \"host:veth-a\"]\n"),
        );
        assert!(
            e.contains("never touches the machine's own network namespace"),
            "{e}"
        );
        let e = err(
            &d,
            &format!("{base}    - type: macvlan\n      endpoints: [\"a:eth1\", \"b:eth1\"]\n"),
        );
        assert!(e.contains("veth links only"), "{e}");
        let e = err(
            &d,
            &format!("{base}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      mtu: 20\n"),
        );
        assert!(e.contains("mtu 20"), "{e}");
        let e = err(
            &d,
            &format!(
                "{base}    - endpoints: [{{node: a, interface: eth1, mac: \"01:00:5e:00:00:01\"}}, \"b:eth1\"]\n"
            ),
        );
        assert!(e.contains("multicast"), "{e}");
    }

    #[test]
    fn missing_bound_file() {
        let d = dir();
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, image: frrouting/frr, binds: [nope.conf:/etc/frr/frr.conf] }\n",
        );
        assert!(
            e.contains("node 'r'") && e.contains("nope.conf") && e.contains("does not exist"),
            "{e}"
        );
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, binds: [frr.conf] }\n",
        );
        assert!(e.contains("source:target"), "{e}");
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, startup-config: missing.cfg }\n",
        );
        assert!(
            e.contains("startup-config") && e.contains("missing.cfg"),
            "{e}"
        );
    }

    #[test]
    fn router_without_config() {
        let d = dir();
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, image: quay.io/frrouting/frr:8.4.1 }\n",
        );
        assert!(
            e.contains("node 'r' runs frr but has no config") && e.contains("/etc/frr/frr.conf"),
            "{e}"
        );
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, labels: { contiv-lab.daemon: quagga } }\n",
        );
        assert!(e.contains("quagga"), "{e}");
    }

    #[test]
    fn bad_sysctl_and_env() {
        let d = dir();
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, sysctls: { kernel.panic: 1 } }\n",
        );
        assert!(e.contains("kernel.panic"), "{e}");
        let e = err(
            &d,
            "name: x\ntopology:\n  nodes:\n    r: { kind: linux, env: { 'A=B': 1 } }\n",
        );
        assert!(e.contains("env name"), "{e}");
    }

    #[test]
    fn shipped_topologies_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        for name in ["quickstart", "dual-homed", "leaf-spine"] {
            let t = Topology::from_file(root.join(name).join(format!("{name}.clab.yml")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.name, name);
            assert!(t.nodes.iter().any(|n| n.daemon.is_router()));
        }
    }
}
