//! Who may call what.
//!
//! - Listening only on loopback with no admin token, or with `--insecure` and no token,
//!   everything is open (the machine's own users are trusted, as with Contiv).
//! - Otherwise every request needs `Authorization: Bearer <token>`, reads included, but
//!   for two: `GET /version` and `GET /api/v1/openapi.json` (the software's name,
//!   version and API description, the same for every netmaster of a release: nothing
//!   about the fabric), and `GET /metrics` from a loopback peer (so a local Prometheus
//!   scrapes without a credential; from elsewhere it needs one).
//! - The admin token (`--token-file`) may do everything.
//! - A host's credential ([`crate::credentials`]) may only do what that host's netplugin
//!   does: read the feed, PUT its own report, create endpoints homed on it and delete
//!   endpoints homed on it ([`Caller::may_act_for`], checked by those handlers). Anything
//!   else is 403.
//!
//! Tokens are compared in constant time; none is ever logged or returned.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, ErrorKind};
use crate::credentials;
use crate::store::Store;

/// The access rule in force.
#[derive(Clone)]
pub enum Auth {
    /// No credentials needed (loopback only, or `--insecure`).
    Open,
    /// Every request needs the admin token or a host's credential.
    Token(contiv_model::Secret),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Open => f.write_str("Open"),
            Auth::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// Who made a request, as [`check`] established it.
#[derive(Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token, or no credentials needed.
    Admin,
    /// A host's credential; `digest` is its token's hash, to check again later (the
    /// feed does on every heartbeat).
    Host { host: String, digest: String },
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Admin => f.write_str("Admin"),
            Caller::Host { host, .. } => write!(f, "Host({host})"),
        }
    }
}

impl Caller {
    /// Whether this caller may act for `host` (create or delete an endpoint homed there).
    pub fn may_act_for(&self, host: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Host { host: h, .. } if h == host => Ok(()),
            Caller::Host { host: h, .. } => Err(forbidden(format!(
                "the credential of host {h} may act only for host {h}, not for host {host:?}"
            ))),
        }
    }
}

/// A handler's view of the caller; a request [`check`] did not pass has none (401).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorKind::Unauthorized, "no credential"))
    }
}

/// The peer's address, for the loopback exemption of `/metrics` (set on every request
/// by [`crate::http::serve`]).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

fn forbidden(message: String) -> ApiError {
    ApiError::new(ErrorKind::Forbidden, message)
}

/// Requests anyone may make.
fn public(method: &Method, path: &str, peer: Option<SocketAddr>) -> bool {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return false;
    }
    match path {
        "/version" | "/api/v1/openapi.json" => true,
        "/metrics" => peer.is_some_and(|p| p.ip().is_loopback()),
        _ => false,
    }
}

/// What a host's credential may reach (the handlers of endpoint calls then check the
/// endpoint's host).
fn host_may(method: &Method, path: &str, host: &str) -> bool {
    let report = path
        .strip_prefix("/api/v1/feed/hosts/")
        .map(|rest| rest.trim_end_matches('/'));
    match *method {
        Method::GET | Method::HEAD => matches!(path, "/api/v1/feed/" | "/api/v1/feed"),
        Method::PUT => report == Some(host),
        Method::POST => matches!(
            path,
            "/api/v1/plugin/endpoints/" | "/api/v1/plugin/endpoints"
        ),
        Method::DELETE => path
            .strip_prefix("/api/v1/plugin/endpoints/")
            .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
        _ => false,
    }
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(ErrorKind::Unauthorized, message).into_response()
}

pub(super) async fn check(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Auth::Token(admin) = &st.auth else {
        req.extensions_mut().insert(Caller::Admin);
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(a))| *a);
    if public(req.method(), req.uri().path(), peer) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        return unauthorized(
            "this netmaster needs a credential for every request: give netctl the admin token (--token-file or NETMASTER_TOKEN), netplugin its host's credential (--token-file)",
        );
    };
    let caller = if credentials::same(given.as_bytes(), admin.expose().as_bytes()) {
        Caller::Admin
    } else {
        match credentials::verify(st.engine.store(), given).await {
            Ok(Some(host)) => Caller::Host {
                host,
                digest: credentials::digest(given),
            },
            Ok(None) => {
                return unauthorized(
                    "the bearer token is neither the admin token nor a host's current credential",
                );
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    if let Caller::Host { host, .. } = &caller
        && !host_may(req.method(), req.uri().path(), host)
    {
        return forbidden(format!(
            "the credential of host {host} may only read the feed, report as {host} and create or delete {host}'s endpoints; {} {} needs the admin token",
            req.method(),
            req.uri().path()
        ))
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Whether a host's credential is still the one `caller` presented (always true for
/// the admin).
pub async fn still_valid(st: &AppState, caller: &Caller) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Host { host, digest } => {
            match st
                .engine
                .store()
                .get(&format!("{}{host}", credentials::PREFIX))
                .await
            {
                Ok(Some(kv)) => serde_json::from_slice::<credentials::Stored>(&kv.value)
                    .is_ok_and(|s| credentials::same(s.sha256.as_bytes(), digest.as_bytes())),
                Ok(None) => false,
                // The store is down: keep the stream; the next request checks again.
                Err(_) => true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_host_credential_reaches() {
        let may = |m: Method, p: &str| host_may(&m, p, "h1");
        assert!(may(Method::GET, "/api/v1/feed/"));
        assert!(may(Method::PUT, "/api/v1/feed/hosts/h1/"));
        assert!(may(Method::POST, "/api/v1/plugin/endpoints/"));
        assert!(may(Method::DELETE, "/api/v1/plugin/endpoints/e1/"));
        assert!(!may(Method::PUT, "/api/v1/feed/hosts/h2/"));
        assert!(!may(Method::PUT, "/api/v1/feed/hosts/h1/x/"));
        assert!(may(Method::DELETE, "/api/v1/plugin/endpoints/e1"));
        assert!(!may(
            Method::DELETE,
            "/api/v1/plugin/endpoints/e1/../../../networks/n/"
        ));
        assert!(!may(Method::DELETE, "/api/v1/plugin/endpoints/a/b/"));
        assert!(!may(Method::DELETE, "/api/v1/plugin/endpoints//"));
        assert!(!may(Method::PUT, "/api/v1/feed/hosts/h%31/"));
        assert!(!may(Method::GET, "/api/v1/feed/hosts/"));
        assert!(!may(Method::POST, "/api/v1/plugin/hosts/h1/collect"));
        assert!(!may(Method::POST, "/api/v1/networks/default:n/"));
        assert!(!may(Method::GET, "/api/v1/networks/"));
        assert!(!may(Method::GET, "/info"));
        assert!(!may(Method::POST, "/api/v1/credentials/hosts/h1/"));
    }

    #[test]
    fn what_anyone_reaches() {
        let lo: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let far: SocketAddr = "192.0.2.1:5".parse().unwrap();
        assert!(public(&Method::GET, "/version", None));
        assert!(public(&Method::GET, "/metrics", Some(lo)));
        assert!(!public(&Method::GET, "/metrics", Some(far)));
        assert!(!public(&Method::GET, "/metrics", None));
        assert!(!public(&Method::GET, "/info", Some(lo)));
        assert!(!public(&Method::POST, "/version", Some(lo)));
    }
}
