//! The API netplugins use to create and remove endpoints, and to collect the endpoints
//! of a host that is gone. An endpoint's address comes from its network's (or group's)
//! pool, in the same transaction as the endpoint object, so an address is never held
//! without its endpoint or handed out twice.
//!
//! - `POST /api/v1/plugin/endpoints/` with an [`EndpointRequest`]: creates the endpoint
//!   (or returns it unchanged when it already exists with the same network and host, so
//!   a retried request is harmless) and answers a [`contiv_model::EndpointAllocation`].
//! - `DELETE /api/v1/plugin/endpoints/<id>/`: releases the address and removes the
//!   endpoint; removing one that does not exist succeeds.
//! - `POST /api/v1/plugin/hosts/<host>/collect`: removes every endpoint homed on the
//!   host (also done automatically for hosts silent longer than the GC time).
//!
//! A host's credential creates only endpoints homed on its host and deletes only those
//! (403 otherwise); collecting needs the admin token ([`super::auth`]).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contiv_model::{Endpoint, EndpointRequest};

use super::auth::Caller;
use super::{ApiError, AppState, json, parse_body};
use crate::intent::IntentError;
use crate::intent::endpoints::{allocation, collect_host, plan_create_endpoint, plan_remove};

pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| super::body_error(&e))?;
    let req: EndpointRequest = parse_body(&body)?;
    caller.may_act_for(&req.host)?;
    let r = req.clone();
    // What the committed plan wrote, for when the world has not caught up yet.
    let written = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = written.clone();
    st.engine
        .commit(move |w| {
            let (plan, ep) = plan_create_endpoint(w, &r)?;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(ep);
            Ok(plan)
        })
        .await?;
    let w = st.engine.world();
    let ep = match w.get::<Endpoint>(&req.endpoint_id)? {
        Some(ep) => ep,
        None => written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "endpoint {} vanished after its write",
                    req.endpoint_id
                ))
            })?,
    };
    Ok(json(StatusCode::OK, &allocation(&w, &ep)?))
}

pub(super) async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = super::path_param("id", id)?;
    if let Some(ep) = st.engine.world().get::<Endpoint>(&id)? {
        caller.may_act_for(&ep.homing_host)?;
        let host = ep.homing_host;
        st.engine
            .commit({
                let id = id.clone();
                move |w| {
                    // Checked again against the world the removal is planned on.
                    if let Some(now) = w.get::<Endpoint>(&id)?
                        && now.homing_host != host
                    {
                        return Err(IntentError::conflict(format!(
                            "endpoint {id} moved to host {} meanwhile",
                            now.homing_host
                        )));
                    }
                    plan_remove(w, std::slice::from_ref(&id))
                }
            })
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn collect(
    State(st): State<AppState>,
    host: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let host = super::host_name(host)?;
    let n = collect_host(&st.engine, &host).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "host": host, "collected": n }),
    ))
}
