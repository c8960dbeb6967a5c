//! netplugin's side of the CNI socket: an axum router that exposes an [`EndpointService`]
//! as JSON over HTTP, and helpers to bind and serve a unix socket (also used by the
//! Docker driver).
//!
//! Wire contract (all `POST`, JSON bodies; the Content-Type is not checked):
//!
//! | path | body | 200 reply |
//! |---|---|---|
//! | [`PATH_ADD`] | [`AddEndpoint`] | [`EndpointResult`] |
//! | [`PATH_DEL`] | [`DelEndpoint`] | `{}` |
//! | [`PATH_CHECK`] | [`CheckEndpoint`] | `{}` |
//! | [`PATH_STATUS`] | empty | `{}` |
//! | [`PATH_GC`] | [`GcRequest`] | `{}` |
//!
//! Failures answer a non-200 status with an [`EndpointError`] body
//! (`{"kind": "no_free_address", "message": "..."}`).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixListener;

use super::service::{
    AddEndpoint, CheckEndpoint, DelEndpoint, EndpointError, EndpointService, ErrorKind, GcRequest,
};

pub const PATH_ADD: &str = "/cni/v1/add";
pub const PATH_DEL: &str = "/cni/v1/del";
pub const PATH_CHECK: &str = "/cni/v1/check";
pub const PATH_STATUS: &str = "/cni/v1/status";
pub const PATH_GC: &str = "/cni/v1/gc";

/// The HTTP status an error kind is sent with.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::NoFreeAddress => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn json_response<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the reply: {e}"),
        )
            .into_response(),
    }
}

fn reply<T: Serialize>(r: Result<T, EndpointError>) -> Response {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(http_status(e.kind), &e),
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, EndpointError> {
    serde_json::from_slice(body)
        .map_err(|e| EndpointError::invalid(format!("cannot decode the {what} request: {e}")))
}

#[derive(Serialize)]
struct Empty {}

async fn add<S: EndpointService>(State(s): State<Arc<S>>, body: Bytes) -> Response {
    match parse::<AddEndpoint>(&body, "add") {
        Ok(req) => reply(s.add(req).await),
        Err(e) => reply::<Empty>(Err(e)),
    }
}

async fn del<S: EndpointService>(State(s): State<Arc<S>>, body: Bytes) -> Response {
    match parse::<DelEndpoint>(&body, "del") {
        Ok(req) => reply(s.del(req).await.map(|()| Empty {})),
        Err(e) => reply::<Empty>(Err(e)),
    }
}

async fn check<S: EndpointService>(State(s): State<Arc<S>>, body: Bytes) -> Response {
    match parse::<CheckEndpoint>(&body, "check") {
        Ok(req) => reply(s.check(req).await.map(|()| Empty {})),
        Err(e) => reply::<Empty>(Err(e)),
    }
}

async fn status<S: EndpointService>(State(s): State<Arc<S>>, _body: Bytes) -> Response {
    reply(s.status().await.map(|()| Empty {}))
}

async fn gc<S: EndpointService>(State(s): State<Arc<S>>, body: Bytes) -> Response {
    match parse::<GcRequest>(&body, "gc") {
        Ok(req) => reply(s.gc(req).await.map(|()| Empty {})),
        Err(e) => reply::<Empty>(Err(e)),
    }
}

/// The CNI socket's router over a service.
pub fn router<S: EndpointService>(service: Arc<S>) -> Router {
    Router::new()
        .route(PATH_ADD, post(add::<S>))
        .route(PATH_DEL, post(del::<S>))
        .route(PATH_CHECK, post(check::<S>))
        .route(PATH_STATUS, post(status::<S>))
        .route(PATH_GC, post(gc::<S>))
        .with_state(service)
}

/// Binds a unix socket at `path`: creates the parent directory, replaces a stale socket
/// file (one nobody accepts on), refuses to replace a live socket or a non-socket file,
/// and makes the socket accessible to its owner and group only (0660).
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves `router` on `listener` until `shutdown` completes (in-flight requests finish).
pub async fn serve(
    listener: UnixListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
