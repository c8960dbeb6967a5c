//! netctl's command tree (Contiv's, verb for verb and flag for flag).

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "netctl",
    version,
    about = "Drive the contiv-rs netmaster",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// netmaster's URL.
    #[arg(
        long,
        global = true,
        env = "NETMASTER",
        default_value = "http://127.0.0.1:9999"
    )]
    pub netmaster: String,
    /// File with the bearer token for netmasters that require one (or NETMASTER_TOKEN).
    #[arg(long, global = true, env = "NETMASTER_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// CA certificate (PEM) netmaster's certificate must chain to (for https:// URLs;
    /// the system's roots are then not used).
    #[arg(long, global = true, env = "NETMASTER_CA")]
    pub ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Args, Clone, Default)]
pub struct TenantFlag {
    /// Tenant name.
    #[arg(short = 't', long, default_value = "default")]
    pub tenant: String,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ListFlags {
    /// Tenant name.
    #[arg(short = 't', long, default_value = "default")]
    pub tenant: String,
    /// List across all tenants.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Print only names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Output {
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Print only names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Application profiles.
    #[command(name = "app-profile")]
    AppProfile {
        #[command(subcommand)]
        cmd: AppProfileCmd,
    },
    /// BGP settings of hosts (routing mode).
    Bgp {
        #[command(subcommand)]
        cmd: BgpCmd,
    },
    /// Print a shell completion script.
    Completion { shell: clap_complete::Shell },
    /// Endpoints (containers).
    #[command(alias = "ep")]
    Endpoint {
        #[command(subcommand)]
        cmd: EndpointCmd,
    },
    /// ACI external contracts (not supported: contiv-rs has no ACI mode).
    #[command(name = "external-contracts")]
    ExternalContracts {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// ACI gateway (not supported: contiv-rs has no ACI mode).
    #[command(name = "aci-gw")]
    AciGw {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Fabric-wide settings.
    Global {
        #[command(subcommand)]
        cmd: GlobalCmd,
    },
    /// Endpoint groups.
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
    /// Hosts' credentials at netmaster (what their netplugins present).
    Host {
        #[command(subcommand)]
        cmd: HostCmd,
    },
    /// Networks.
    #[command(alias = "network")]
    Net {
        #[command(subcommand)]
        cmd: NetCmd,
    },
    /// Network profiles (bandwidth, DSCP).
    Netprofile {
        #[command(subcommand)]
        cmd: NetprofileCmd,
    },
    /// Policies and their rules.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Service load balancers.
    Service {
        #[command(subcommand)]
        cmd: ServiceCmd,
    },
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        cmd: TenantCmd,
    },
    /// Print netctl's and netmaster's versions.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum GlobalCmd {
    /// Show the settings.
    Info {
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Show the settings with their operational state.
    Inspect,
    /// Change settings (only the flags given change).
    Set(GlobalSet),
}

#[derive(Debug, Args)]
pub struct GlobalSet {
    /// Fabric mode: default, aci or aci-opflex.
    #[arg(short = 'f', long)]
    pub fabric_mode: Option<String>,
    /// VLAN range, e.g. 1-4094.
    #[arg(short = 'v', long)]
    pub vlan_range: Option<String>,
    /// VXLAN range, e.g. 1-10000.
    #[arg(short = 'x', long)]
    pub vxlan_range: Option<String>,
    /// Forwarding mode: bridge or routing.
    #[arg(short = 'b', long)]
    pub fwd_mode: Option<String>,
    /// ARP mode: proxy or flood.
    #[arg(short = 'a', long)]
    pub arp_mode: Option<String>,
    /// Private /16 subnet used for host access.
    #[arg(short = 's', long)]
    pub private_subnet: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    #[command(alias = "list")]
    Ls(Output),
    Create {
        name: String,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
    },
    Inspect {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetCmd {
    #[command(alias = "list")]
    Ls(ListFlags),
    Create(NetCreate),
    #[command(alias = "delete")]
    Rm {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    Inspect {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct NetCreate {
    #[command(flatten)]
    pub t: TenantFlag,
    /// Network type: data or infra.
    #[arg(short = 'n', long, default_value = "data")]
    pub nw_type: String,
    /// Encapsulation: vlan or vxlan.
    #[arg(short = 'e', long, default_value = "vxlan")]
    pub encap: String,
    /// VLAN id or VNI (0 picks a free one).
    #[arg(short = 'p', long, default_value_t = 0)]
    pub pkt_tag: i64,
    /// Subnet: a.b.c.d/len or a.b.c.d-e.f.g.h/len.
    #[arg(short = 's', long)]
    pub subnet: String,
    /// Gateway address.
    #[arg(short = 'g', long, default_value = "")]
    pub gateway: String,
    /// IPv6 subnet.
    #[arg(long = "subnetv6", alias = "s6", default_value = "")]
    pub subnetv6: String,
    /// IPv6 gateway.
    #[arg(long = "gatewayv6", alias = "g6", default_value = "")]
    pub gatewayv6: String,
    /// A tag for the network (used by orchestrators).
    #[arg(long = "nw-tag", alias = "tag", default_value = "")]
    pub nw_tag: String,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    #[command(alias = "list")]
    Ls(ListFlags),
    Create(GroupCreate),
    #[command(alias = "delete")]
    Rm {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    Inspect {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct GroupCreate {
    #[command(flatten)]
    pub t: TenantFlag,
    /// Policies to attach (repeatable).
    #[arg(short = 'p', long = "policy")]
    pub policy: Vec<String>,
    /// Network profile.
    #[arg(short = 'n', long, default_value = "")]
    pub networkprofile: String,
    /// External contracts (ACI; not supported).
    #[arg(short = 'e', long = "external-contract")]
    pub external_contract: Vec<String>,
    /// The group's own address pool: a.b.c.d-e.f.g.h inside the network.
    #[arg(short = 'r', long, default_value = "")]
    pub ip_pool: String,
    /// A tag for the group.
    #[arg(long = "epg-tag", alias = "tag", default_value = "")]
    pub epg_tag: String,
    pub network: String,
    pub group: String,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    #[command(alias = "list")]
    Ls(ListFlags),
    Create {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    #[command(alias = "delete")]
    Rm {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    Inspect {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    #[command(name = "rule-add")]
    RuleAdd(Box<RuleAdd>),
    #[command(name = "rule-rm", alias = "rule-delete")]
    RuleRm {
        #[command(flatten)]
        t: TenantFlag,
        policy: String,
        rule_id: String,
    },
    /// What the policy decides for a new connection from one end to another, and why.
    Explain {
        /// The source: a container name, an endpoint id (or a unique prefix), a
        /// container id, or an address.
        from: String,
        /// The destination, as the source.
        to: String,
        /// tcp/<port>, udp/<port>, icmp, tcp, udp or an IP protocol number.
        service: String,
        /// Print JSON.
        #[arg(short = 'j', long)]
        json: bool,
    },
    #[command(name = "rule-ls", alias = "rule-list")]
    RuleLs {
        #[command(flatten)]
        t: TenantFlag,
        #[command(flatten)]
        out: Output,
        policy: String,
    },
}

#[derive(Debug, Args)]
pub struct RuleAdd {
    #[command(flatten)]
    pub t: TenantFlag,
    /// Priority 1..100.
    #[arg(short = 'p', long, default_value_t = 1)]
    pub priority: i64,
    /// in or out.
    #[arg(short = 'd', long, default_value = "in")]
    pub direction: String,
    #[arg(short = 'g', long, default_value = "")]
    pub from_group: String,
    #[arg(short = 'e', long, default_value = "")]
    pub to_group: String,
    #[arg(short = 'n', long, default_value = "")]
    pub from_network: String,
    #[arg(short = 'o', long, default_value = "")]
    pub to_network: String,
    #[arg(short = 'i', long, default_value = "")]
    pub from_ip_address: String,
    #[arg(short = 's', long, default_value = "")]
    pub to_ip_address: String,
    /// tcp, udp, icmp or a protocol number.
    #[arg(short = 'l', long, default_value = "")]
    pub protocol: String,
    #[arg(short = 'P', long, default_value_t = 0)]
    pub port: i64,
    /// allow or deny.
    #[arg(short = 'j', long, default_value = "allow")]
    pub action: String,
    pub policy: String,
    pub rule_id: String,
}

#[derive(Debug, Subcommand)]
pub enum BgpCmd {
    #[command(alias = "list")]
    Ls(Output),
    Create(Box<BgpCreate>),
    #[command(alias = "delete")]
    Rm {
        hostname: String,
    },
    Inspect {
        hostname: String,
    },
    /// The whole fabric as the netplugins report it: every host's sessions and routes.
    Routes(Output),
}

#[derive(Debug, Args)]
pub struct BgpCreate {
    /// The host's address on its ToR subnet, with the length (a.b.c.d/len).
    #[arg(long)]
    pub router_ip: String,
    /// The host's AS number.
    #[arg(long = "as")]
    pub asn: String,
    /// The neighbor's AS number (Contiv's one-neighbor form).
    #[arg(long, default_value = "")]
    pub neighbor_as: String,
    /// The neighbor's address (Contiv's one-neighbor form).
    #[arg(long, default_value = "")]
    pub neighbor: String,
    /// More neighbors as ADDRESS:AS (repeatable), e.g. for a second ToR.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// Enable BFD on the sessions.
    #[arg(long)]
    pub bfd: bool,
    /// BFD transmit/receive interval in milliseconds (50..=60000; default 300). Needs --bfd.
    #[arg(long, requires = "bfd")]
    pub bfd_interval: Option<u32>,
    /// BFD detection multiplier (1..=255; default 3). Needs --bfd.
    #[arg(long, requires = "bfd")]
    pub bfd_multiplier: Option<u32>,
    /// Authenticate BFD (RFC 5880 §6.7) with the key in this secret of each host's
    /// --bgp-secrets-dir (a file name; the key never goes to netmaster). Needs --bfd.
    #[arg(long, requires = "bfd")]
    pub bfd_auth_ref: Option<String>,
    /// The BFD authentication type. Needs --bfd-auth-ref.
    #[arg(long, requires = "bfd_auth_ref", default_value = "meticulous-keyed-sha1",
          value_parser = ["keyed-sha1", "meticulous-keyed-sha1", "keyed-md5", "meticulous-keyed-md5"])]
    pub bfd_auth_type: String,
    /// The BFD Auth Key ID both sides use (0..=255). Needs --bfd-auth-ref.
    #[arg(long, requires = "bfd_auth_ref", default_value_t = 1)]
    pub bfd_auth_key_id: u8,
    /// Graceful restart time in seconds (0 disables).
    #[arg(long, default_value_t = 0)]
    pub graceful_restart: u32,
    /// Communities to attach (repeatable): ASN:VALUE or GLOBAL:LOCAL1:LOCAL2.
    #[arg(long = "community")]
    pub communities: Vec<String>,
    /// What the host advertises: per-endpoint (/32s, Contiv's way), host-block (its
    /// block, with /32s for endpoints outside it) or network-subnet.
    #[arg(long, default_value = "per-endpoint", value_parser = ["per-endpoint", "host-block", "network-subnet"])]
    pub advertise: String,
    /// The host's block for --advertise host-block (a.b.c.d/len).
    #[arg(long, default_value = "")]
    pub host_block: String,
    /// Install a default route learned from the neighbors (refused without this).
    #[arg(long)]
    pub accept_default: bool,
    /// The most prefixes accepted from one neighbor (default 200000); above it the
    /// session closes (Cease) and comes back 60 s later.
    #[arg(long)]
    pub max_prefix: Option<u32>,
    /// Turn GTSM (TTL 255, RFC 5082) off, for a neighbor that is not directly connected.
    #[arg(long)]
    pub no_ttl_security: bool,
    /// Another address of the host with its subnet's length, on a link to a further ToR
    /// (repeatable): neighbors must be on the router subnet or one of these.
    #[arg(long = "local-address")]
    pub local_addresses: Vec<String>,
    pub hostname: String,
}

#[derive(Debug, Subcommand)]
pub enum EndpointCmd {
    /// Show an endpoint by (a prefix of) its id, container id or container name.
    Inspect { id: String },
    #[command(alias = "list")]
    Ls(Output),
    /// Remove every endpoint of a host that is gone for good (releases their addresses).
    Collect { host: String },
}

#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// A host's credential: netplugin's `--token-file` holds it.
    Credential {
        #[command(subcommand)]
        cmd: CredentialCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCmd {
    /// Make a fresh credential for the host, replacing (revoking) any older one, and
    /// print its token: it is shown this once.
    Create { host: String },
    /// Revoke the host's credential at once.
    #[command(alias = "delete")]
    Rm { host: String },
    /// The hosts that have a credential (names only).
    #[command(alias = "list")]
    Ls {
        /// Print JSON.
        #[arg(short = 'j', long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    #[command(alias = "list")]
    Ls(ListFlags),
    Create(ServiceCreate),
    #[command(alias = "delete")]
    Rm {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    Inspect {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ServiceCreate {
    #[command(flatten)]
    pub t: TenantFlag,
    /// The service network.
    #[arg(short = 's', long)]
    pub network: String,
    /// Provider selectors key=value (repeatable).
    #[arg(short = 'l', long = "selector")]
    pub selectors: Vec<String>,
    /// Ports svcPort:provPort:TCP|UDP (repeatable).
    #[arg(short = 'p', long = "port")]
    pub ports: Vec<String>,
    /// Preferred VIP.
    #[arg(long = "preferred-ip", alias = "ip", default_value = "")]
    pub preferred_ip: String,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum NetprofileCmd {
    #[command(alias = "list")]
    Ls(ListFlags),
    Create(NetprofileCreate),
    #[command(alias = "delete")]
    Rm {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    Inspect {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct NetprofileCreate {
    #[command(flatten)]
    pub t: TenantFlag,
    #[arg(short = 'b', long, default_value = "")]
    pub bandwidth: String,
    #[arg(short = 'd', long, default_value_t = 0)]
    pub dscp: i64,
    #[arg(short = 's', long, default_value_t = 0)]
    pub burst: i64,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum AppProfileCmd {
    #[command(alias = "list")]
    Ls(ListFlags),
    Create(AppProfileCreate),
    Update(AppProfileCreate),
    #[command(alias = "delete")]
    Rm {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
    #[command(name = "group-ls")]
    GroupLs {
        #[command(flatten)]
        t: TenantFlag,
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AppProfileCreate {
    #[command(flatten)]
    pub t: TenantFlag,
    /// Endpoint groups, comma separated.
    #[arg(short = 'g', long = "group", value_delimiter = ',')]
    pub groups: Vec<String>,
    pub name: String,
}
