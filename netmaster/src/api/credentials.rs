//! Per-host credentials, for the admin only ([`crate::credentials`] keeps their hashes):
//!
//! - `POST /api/v1/credentials/hosts/<host>/` makes a fresh token for the host,
//!   replacing (and so revoking) any older one, and answers it once as a
//!   [`contiv_model::credential::HostCredential`] (201);
//! - `DELETE /api/v1/credentials/hosts/<host>/` revokes it at once (204; 404 when the
//!   host has none);
//! - `GET /api/v1/credentials/hosts/` lists the hosts that have one (names only).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contiv_model::credential::HostCredential;

use super::auth::Caller;
use super::{ApiError, AppState, ErrorKind, json};
use crate::credentials;

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Host { host, .. } => Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("the credential of host {host} cannot manage credentials; use the admin token"),
        )),
    }
}

pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    host: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    let host = super::host_name(host)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (token, stored) = credentials::generate(&host, now).map_err(ApiError::internal)?;
    credentials::put(st.engine.store(), &stored).await?;
    tracing::info!("created a new credential for host {host}");
    Ok(json(StatusCode::CREATED, &HostCredential { host, token }))
}

pub(super) async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    host: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    let host = super::host_name(host)?;
    if !credentials::delete(st.engine.store(), &host).await? {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("host {host} has no credential"),
        )
        .with_object(format!("credentials/hosts/{host}")));
    }
    tracing::info!("deleted the credential of host {host}");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list(State(st): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    let hosts = credentials::hosts(st.engine.store()).await?;
    Ok(json(StatusCode::OK, &hosts))
}
