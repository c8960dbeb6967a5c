//! `GET /api/v1/policy-explain/?from=<end>&to=<end>&service=<service>`: what the policy
//! decides for a new connection and why ([`crate::kinds::explain`] computes it; this
//! only reads the query and renders the answer, a [`contiv_model::PolicyExplain`]). A
//! read: no token needed, followers answer too.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{ApiError, AppState, json};

#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    service: String,
}

pub(super) async fn explain(
    State(st): State<AppState>,
    q: Result<Query<ExplainQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::validation(format!("bad query string: {e}")))?;
    let world = st.engine.world();
    let answer = crate::kinds::explain::explain(&world, &q.from, &q.to, &q.service)?;
    Ok(json(StatusCode::OK, &answer))
}
