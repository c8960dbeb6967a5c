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
        let raw: RawFile = serde_yaml::from_str(text).map_err(|e| Error::Parse {
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
    mgmt: Option<serde_yaml::Value>,
    #[serde(default)]
    settings: Option<serde_yaml::Value>,
    #[serde(default)]
    debug: Option<serde_yaml::Value>,
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
    nodes: serde_yaml::Mapping,
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
    mgmt_ipv4: Option<serde_yaml::Value>,
    #[serde(default)]
    mgmt_ipv6: Option<serde_yaml::Value>,
    #[serde(default)]
    ports: Option<serde_yaml::Value>,
    #[serde(default)]
    cmd: Option<serde_yaml::Value>,
    #[serde(default)]
    entrypoint: Option<serde_yaml::Value>,
    #[serde(default)]
    user: Option<serde_yaml::Value>,
    #[serde(default)]
    cpu: Option<serde_yaml::Value>,
    #[serde(default)]
    cpu_set: Option<serde_yaml::Value>,
    #[serde(default)]
    memory: Option<serde_yaml::Value>,
    #[serde(default)]
    network_mode: Option<serde_yaml::Value>,
    #[serde(default)]
    dns: Option<serde_yaml::Value>,
    #[serde(default)]
    extras: Option<serde_yaml::Value>,
    #[serde(default)]
    healthcheck: Option<serde_yaml::Value>,
    #[serde(default)]
    image_pull_policy: Option<serde_yaml::Value>,
    #[serde(default)]
    restart_policy: Option<serde_yaml::Value>,
    #[serde(default)]
    stages: Option<serde_yaml::Value>,
    #[serde(default)]
    wait_for: Option<serde_yaml::Value>,
    #[serde(default)]
    runtime: Option<serde_yaml::Value>,
    #[serde(default)]
    auto_remove: Option<serde_yaml::Value>,
    #[serde(default)]
    enforce_startup_config: Option<serde_yaml::Value>,
    #[serde(default)]
    suppress_startup_config: Option<serde_yaml::Value>,
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
    vars: Option<serde_yaml::Value>,
    #[serde(default)]
    labels: Option<serde_yaml::Value>,
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
            serde_yaml::Value::String(s) => s,
            other => return Err(invalid(format!("node name {other:?} is not a string"))),
        };
        check_name(&format!("node name '{name}'"), &name).map_err(&invalid)?;
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("node '{name}' is defined twice")));
        }
        let own: RawNode = if value.is_null() {
            RawNode::default()
        } else {
            serde_yaml::from_value(value).map_err(|e| Error::Parse {
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

fn check_name(what: &str, s: &str) -> Result<(), String> {
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
