//! The pure core of the `contiv-cni` binary: one CNI invocation (environment + stdin) in,
//! stdout bytes and an exit code out, with netplugin behind a blocking [`CniBackend`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::service::{
    AddEndpoint, Attachment, CheckEndpoint, DelEndpoint, EndpointError, EndpointResult,
    EndpointService, ErrorKind, GcRequest, NetworkTarget,
};
use super::types::{
    CniArgs, CniEnv, CniError, CniResult, CniVersion, NetConf, SUPPORTED_VERSIONS, code,
};

/// The endpoint calls the CNI plugin makes, blocking (the plugin binary has no async
/// runtime). [`super::client::UnixClient`] implements it over netplugin's socket and
/// [`Blocking`] over any in-process [`EndpointService`].
pub trait CniBackend {
    fn add(&self, req: AddEndpoint) -> Result<EndpointResult, EndpointError>;
    fn del(&self, req: DelEndpoint) -> Result<(), EndpointError>;
    fn check(&self, req: CheckEndpoint) -> Result<(), EndpointError>;
    fn status(&self) -> Result<(), EndpointError>;
    fn gc(&self, req: GcRequest) -> Result<(), EndpointError>;
}

impl<T: CniBackend + ?Sized> CniBackend for &T {
    fn add(&self, req: AddEndpoint) -> Result<EndpointResult, EndpointError> {
        (**self).add(req)
    }
    fn del(&self, req: DelEndpoint) -> Result<(), EndpointError> {
        (**self).del(req)
    }
    fn check(&self, req: CheckEndpoint) -> Result<(), EndpointError> {
        (**self).check(req)
    }
    fn status(&self) -> Result<(), EndpointError> {
        (**self).status()
    }
    fn gc(&self, req: GcRequest) -> Result<(), EndpointError> {
        (**self).gc(req)
    }
}

/// Drives an async [`EndpointService`] to completion on the calling thread. Meant for
/// services whose futures do not need a tokio reactor (such as the in-memory fake).
#[derive(Debug)]
pub struct Blocking<'a, S>(pub &'a S);

impl<S: EndpointService> CniBackend for Blocking<'_, S> {
    fn add(&self, req: AddEndpoint) -> Result<EndpointResult, EndpointError> {
        futures::executor::block_on(self.0.add(req))
    }
    fn del(&self, req: DelEndpoint) -> Result<(), EndpointError> {
        futures::executor::block_on(self.0.del(req))
    }
    fn check(&self, req: CheckEndpoint) -> Result<(), EndpointError> {
        futures::executor::block_on(self.0.check(req))
    }
    fn status(&self) -> Result<(), EndpointError> {
        futures::executor::block_on(self.0.status())
    }
    fn gc(&self, req: GcRequest) -> Result<(), EndpointError> {
        futures::executor::block_on(self.0.gc(req))
    }
}

/// What the plugin prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniOutput {
    pub stdout: Vec<u8>,
    pub exit_code: i32,
}

impl CniOutput {
    fn success(v: Option<serde_json::Value>) -> Self {
        let stdout = match v {
            Some(v) => {
                let mut b = serde_json::to_vec(&v).unwrap_or_default();
                b.push(b'\n');
                b
            }
            None => Vec::new(),
        };
        CniOutput {
            stdout,
            exit_code: 0,
        }
    }

    fn error(err: &CniError, version: &str) -> Self {
        let mut stdout = serde_json::to_vec(&err.to_json(version)).unwrap_or_default();
        stdout.push(b'\n');
        CniOutput {
            stdout,
            exit_code: 1,
        }
    }
}

/// The CNI commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "STATUS" => Self::Status,
            "GC" => Self::Gc,
            "VERSION" => Self::Version,
            _ => return None,
        })
    }
}

/// Runs one CNI invocation. `connect` is called with the configured `netplugin_socket`
/// once the configuration is valid (never for VERSION).
pub fn handle<B: CniBackend>(
    env: &CniEnv,
    stdin: &[u8],
    connect: impl FnOnce(&Path) -> B,
) -> CniOutput {
    // The version errors are reported with: the config's when it parses, else the latest.
    let version_hint = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        })
        .filter(|v| CniVersion::parse(v).is_some())
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_string());
    match run(env, stdin, connect) {
        Ok(out) => out,
        Err(e) => CniOutput::error(&e, &version_hint),
    }
}

fn required<'a>(v: &'a Option<String>, name: &str, cmd: &str) -> Result<&'a str, CniError> {
    v.as_deref().ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            format!("{name} is required for {cmd} but is missing or empty"),
        )
    })
}

/// Container ids: letters, digits, `_`, `.`, `-`, starting with a letter or digit.
fn check_container_id(id: &str) -> Result<(), CniError> {
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_ENV,
            format!(
                "CNI_CONTAINERID {id:?} is invalid: it must start with a letter or digit and \
                 hold only letters, digits, '_', '.' and '-'"
            ),
        ))
    }
}

/// Interface names: 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
fn check_ifname(name: &str) -> Result<(), CniError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_ENV,
            format!(
                "CNI_IFNAME {name:?} is invalid: it must be 1 to 15 bytes, not '.' or '..', \
                 without '/', ':' or whitespace"
            ),
        ))
    }
}

fn target_of(conf: &NetConf) -> Result<NetworkTarget, CniError> {
    NetworkTarget::new(&conf.tenant, &conf.network, conf.group.as_deref())
        .map_err(|e| CniError::new(code::INVALID_NETWORK_CONFIG, e.to_string()))
}

/// Maps a service error to a CNI error for one command.
pub fn cni_error(cmd: Command, e: EndpointError) -> CniError {
    let code = match (e.kind, cmd) {
        (ErrorKind::Unavailable, Command::Status) => code::NOT_AVAILABLE,
        (ErrorKind::Unavailable, _) => code::TRY_AGAIN_LATER,
        (ErrorKind::InvalidArgument, _) => code::INVALID_NETWORK_CONFIG,
        (ErrorKind::NotFound, Command::Check | Command::Del) => code::UNKNOWN_CONTAINER,
        (ErrorKind::NotFound, _) => code::INVALID_NETWORK_CONFIG,
        (ErrorKind::NoFreeAddress, _) => code::NO_FREE_ADDRESS,
        (ErrorKind::Internal, Command::Status) => code::NOT_AVAILABLE,
        (ErrorKind::Internal, _) => code::INTERNAL,
    };
    let msg = match e.kind {
        ErrorKind::Unavailable => "netplugin is not available, try again later",
        ErrorKind::InvalidArgument => "netplugin rejected the request",
        ErrorKind::NotFound => "netplugin does not know the container or network",
        ErrorKind::NoFreeAddress => "the network has no free address",
        ErrorKind::Internal => "netplugin failed",
    };
    CniError::new(code, msg).with_details(e.message)
}

fn run<B: CniBackend>(
    env: &CniEnv,
    stdin: &[u8],
    connect: impl FnOnce(&Path) -> B,
) -> Result<CniOutput, CniError> {
    let cmd_name = env
        .command
        .as_deref()
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_COMMAND is missing or empty"))?;
    let cmd = Command::parse(cmd_name).ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            format!(
                "CNI_COMMAND {cmd_name:?} is unknown: expected ADD, DEL, CHECK, STATUS, GC or VERSION"
            ),
        )
    })?;
    if cmd == Command::Version {
        return Ok(version(stdin));
    }
    let conf = NetConf::parse(stdin)?;
    let v = conf.cni_version;
    match cmd {
        Command::Check if !v.has_check() => {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("CHECK needs cniVersion 0.4.0 or later, the configuration has {v}"),
            ));
        }
        Command::Status | Command::Gc if !v.has_status_and_gc() => {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("{cmd_name} needs cniVersion 1.1.0 or later, the configuration has {v}"),
            ));
        }
        _ => {}
    }
    let target = target_of(&conf)?;
    match cmd {
        Command::Add => {
            let cid = required(&env.container_id, "CNI_CONTAINERID", cmd_name)?;
            check_container_id(cid)?;
            let netns = required(&env.netns, "CNI_NETNS", cmd_name)?;
            let ifname = required(&env.ifname, "CNI_IFNAME", cmd_name)?;
            check_ifname(ifname)?;
            let args = CniArgs::parse(env.args.as_deref().unwrap_or(""))?;
            let ips = if conf.ips.is_empty() {
                args.ips.clone()
            } else {
                conf.ips.clone()
            };
            let mac = conf.mac.or(args.mac);
            let mut labels = BTreeMap::new();
            for (k, v) in [
                ("K8S_POD_NAME", &args.pod_name),
                ("K8S_POD_NAMESPACE", &args.pod_namespace),
                ("K8S_POD_INFRA_CONTAINER_ID", &args.pod_infra_container_id),
                ("K8S_POD_UID", &args.pod_uid),
            ] {
                if let Some(v) = v {
                    labels.insert(k.to_string(), v.clone());
                }
            }
            labels.insert("cni.network".to_string(), conf.name.clone());
            if let Some(prev) = &conf.prev_result {
                CniResult::from_json(prev)?;
            }
            let backend = connect(&conf.netplugin_socket);
            let ep = backend
                .add(AddEndpoint {
                    attachment: Attachment {
                        container_id: cid.to_string(),
                        ifname: ifname.to_string(),
                    },
                    target,
                    netns: Some(PathBuf::from(netns)),
                    ips,
                    mac,
                    labels,
                })
                .map_err(|e| cni_error(cmd, e))?;
            let mut result = CniResult::from_endpoint(&ep, ifname, netns);
            if let Some(prev) = &conf.prev_result {
                // Chained after another plugin: keep what it reported and add ours.
                result = CniResult::from_json(prev)?.chain(result);
            }
            Ok(CniOutput::success(Some(result.to_json(v))))
        }
        Command::Del => {
            let cid = required(&env.container_id, "CNI_CONTAINERID", cmd_name)?;
            check_container_id(cid)?;
            let ifname = required(&env.ifname, "CNI_IFNAME", cmd_name)?;
            check_ifname(ifname)?;
            let backend = connect(&conf.netplugin_socket);
            let res = backend.del(DelEndpoint {
                attachment: Attachment {
                    container_id: cid.to_string(),
                    ifname: ifname.to_string(),
                },
                target: Some(target),
                netns: env.netns.as_ref().map(PathBuf::from),
            });
            match res {
                // DEL must not fail for resources that are gone. When netplugin is down
                // the endpoint is reclaimed later by its own garbage collection.
                Ok(()) => Ok(CniOutput::success(None)),
                Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Unavailable) => {
                    Ok(CniOutput::success(None))
                }
                Err(e) => Err(cni_error(cmd, e)),
            }
        }
        Command::Check => {
            let cid = required(&env.container_id, "CNI_CONTAINERID", cmd_name)?;
            check_container_id(cid)?;
            let netns = required(&env.netns, "CNI_NETNS", cmd_name)?;
            let ifname = required(&env.ifname, "CNI_IFNAME", cmd_name)?;
            check_ifname(ifname)?;
            let prev = conf.prev_result.as_ref().ok_or_else(|| {
                CniError::new(
                    code::INVALID_NETWORK_CONFIG,
                    "CHECK needs prevResult in the network configuration, and it is missing",
                )
            })?;
            let prev = CniResult::from_json(prev)?;
            // The container interface: by name in the sandbox; its addresses are those
            // pointing at it (or, if none point anywhere, all of them).
            let idx = prev
                .interfaces
                .iter()
                .position(|i| i.name == ifname && i.sandbox.is_some());
            let Some(idx) = idx else {
                return Err(CniError::new(
                    code::INVALID_NETWORK_CONFIG,
                    format!("prevResult has no interface {ifname:?} in a sandbox"),
                ));
            };
            let ips = prev
                .ips
                .iter()
                .filter(|ip| ip.interface.is_none_or(|i| i == idx))
                .map(|ip| ip.address)
                .collect();
            let mac = match prev.interfaces[idx].mac.as_deref() {
                Some(m) => Some(m.parse().map_err(|e: super::service::MacParseError| {
                    CniError::new(code::INVALID_NETWORK_CONFIG, format!("prevResult: {e}"))
                })?),
                None => None,
            };
            let backend = connect(&conf.netplugin_socket);
            backend
                .check(CheckEndpoint {
                    attachment: Attachment {
                        container_id: cid.to_string(),
                        ifname: ifname.to_string(),
                    },
                    target,
                    netns: PathBuf::from(netns),
                    ips,
                    mac,
                })
                .map_err(|e| cni_error(cmd, e))?;
            Ok(CniOutput::success(None))
        }
        Command::Status => {
            let backend = connect(&conf.netplugin_socket);
            backend.status().map_err(|e| cni_error(cmd, e))?;
            Ok(CniOutput::success(None))
        }
        Command::Gc => {
            let keep = conf
                .valid_attachments
                .clone()
                .ok_or_else(|| {
                    CniError::new(
                        code::INVALID_NETWORK_CONFIG,
                        "GC needs cni.dev/valid-attachments in the network configuration, and it is missing",
                    )
                })?
                .into_iter()
                .map(Attachment::from)
                .collect();
            let backend = connect(&conf.netplugin_socket);
            backend
                .gc(GcRequest { target, keep })
                .map_err(|e| cni_error(cmd, e))?;
            Ok(CniOutput::success(None))
        }
        Command::Version => Ok(version(stdin)),
    }
}

/// VERSION: the supported versions, whatever stdin holds (runtimes send
/// `{"cniVersion": "..."}` and older ones nothing).
fn version(stdin: &[u8]) -> CniOutput {
    let asked = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|s| s.as_str())
                .and_then(CniVersion::parse)
        });
    CniOutput::success(Some(json!({
        "cniVersion": asked.unwrap_or(CniVersion::LATEST).as_str(),
        "supportedVersions": SUPPORTED_VERSIONS,
    })))
}
