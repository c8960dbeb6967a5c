//! The REST API with Contiv's URL scheme, plus `/metrics`, `/version` and `/info`.
//!
//! - `GET /api/v1/<plural>/` lists, `GET /api/v1/<plural>/<key>/` reads one,
//!   `POST`/`PUT` on the key create or update (the key in the URL must match the body),
//!   `DELETE` removes; `GET /api/v1/inspect/<plural>/<key>/` returns
//!   `{"Config": ..., "Oper": ...}`. URLs work with and without the trailing slash.
//! - `GET /api/v1/policy-explain/?from=&to=&service=` explains what the policy decides
//!   for a new connection ([`explain`]).
//! - Bodies are read as bytes and parsed here (Contiv's clients do not always send a
//!   Content-Type), limited to [`MAX_BODY`].
//! - With an admin token configured, every request needs a credential (the admin token,
//!   or a host's credential for what that host's netplugin does) but for `/version`,
//!   the OpenAPI document and `/metrics` from loopback ([`auth`]); per-host credentials
//!   are managed under `/api/v1/credentials/hosts/` ([`credentials`]). Followers
//!   forward writes to the leader ([`forward`]).

pub mod auth;
pub mod credentials;
pub mod error;
pub mod explain;
pub mod feed;
pub mod forward;
pub mod openapi;
pub mod plugin;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::watch;

pub use error::{ApiError, ErrorKind};

use crate::election::Role;
use crate::intent::{Engine, Kind};
use crate::metrics::Metrics;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub role: watch::Receiver<Role>,
    pub auth: auth::Auth,
    pub info: Arc<Info>,
    /// Forwards writes to the leader while this netmaster follows.
    pub forward: forward::Forwarder,
}

/// What `/info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub version: &'static str,
    #[serde(rename = "storeBackend")]
    pub store_backend: String,
    #[serde(rename = "advertiseURL")]
    pub advertise_url: String,
    #[serde(rename = "listenAddress")]
    pub listen: String,
}

/// JSON response with a status.
pub(crate) fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

/// Parses a request body as `T`, naming the field that failed.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::validation(
            "the request body is empty; send the object as JSON",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut err = ApiError::validation(format!("invalid JSON body: {inner}"));
        if path != "." {
            err = err.with_field(path);
        } else if let Some(f) = unknown_field(&inner.to_string()) {
            err = err.with_field(f);
        }
        err
    })
}

/// A path parameter, or a 400 naming it (axum's own rejection is plain text).
pub(crate) fn path_param(
    name: &str,
    p: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    p.map(|Path(v)| v).map_err(|e| {
        ApiError::invalid_field(name, format!("bad {name} in the URL: {}", e.body_text()))
    })
}

/// The `host` path parameter: a host name by [`contiv_model::validate::check_name`].
pub(crate) fn host_name(
    p: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    let host = path_param("host", p)?;
    contiv_model::validate::check_name("host", &host, contiv_model::validate::LONG_NAME_MAX)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    Ok(host)
}

fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The routes of every kind of Contiv's model.
pub fn contiv_routes(r: Router<AppState>) -> Router<AppState> {
    use contiv_model::*;
    let r = kind_routes::<Global>(r);
    let r = kind_routes::<Tenant>(r);
    let r = kind_routes::<Network>(r);
    let r = kind_routes::<EndpointGroup>(r);
    let r = kind_routes::<Policy>(r);
    let r = kind_routes::<Rule>(r);
    let r = kind_routes::<Bgp>(r);
    let r = kind_routes::<ServiceLb>(r);
    let r = kind_routes::<Netprofile>(r);
    let r = kind_routes::<AppProfile>(r);
    kind_routes::<Endpoint>(r)
}

/// Adds the routes of one kind.
pub fn kind_routes<K: Kind>(router: Router<AppState>) -> Router<AppState> {
    let list = format!("/api/v1/{}/", K::PLURAL);
    let one = format!("/api/v1/{}/{{key}}/", K::PLURAL);
    let inspect = format!("/api/v1/inspect/{}/{{key}}/", K::PLURAL);
    let mut r = router;
    for (path, trimmed) in
        [&list, &one, &inspect].map(|p| (p.clone(), p.trim_end_matches('/').to_string()))
    {
        let route = if path == list {
            get(list_objects::<K>)
        } else if path == one {
            get(get_object::<K>)
                .post(put_object::<K>)
                .put(put_object::<K>)
                .delete(delete_object::<K>)
        } else {
            get(inspect_object::<K>)
        };
        r = r.route(&path, route.clone()).route(&trimmed, route);
    }
    r
}

async fn list_objects<K: Kind>(State(st): State<AppState>) -> Result<Response, ApiError> {
    let objs = st.engine.world().list::<K>()?;
    Ok(json(StatusCode::OK, &objs))
}

type KeyParam = Result<Path<String>, axum::extract::rejection::PathRejection>;

async fn get_object<K: Kind>(
    State(st): State<AppState>,
    key: KeyParam,
) -> Result<Response, ApiError> {
    let key = path_param("key", key)?;
    match st.engine.world().get::<K>(&key)? {
        Some(o) => Ok(json(StatusCode::OK, &o)),
        None => Err(ApiError::not_found(format!("{}/{key}", K::PLURAL))),
    }
}

#[derive(Serialize)]
struct Inspect<'a, C> {
    #[serde(rename = "Config")]
    config: &'a C,
    #[serde(rename = "Oper")]
    oper: serde_json::Value,
}

async fn inspect_object<K: Kind>(
    State(st): State<AppState>,
    key: KeyParam,
) -> Result<Response, ApiError> {
    let key = path_param("key", key)?;
    let world = st.engine.world();
    let Some(o) = world.get::<K>(&key)? else {
        return Err(ApiError::not_found(format!("{}/{key}", K::PLURAL)));
    };
    let oper = K::oper(&world, &o)?;
    Ok(json(StatusCode::OK, &Inspect { config: &o, oper }))
}

async fn put_object<K: Kind>(
    State(st): State<AppState>,
    key: KeyParam,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let key = path_param("key", key)?;
    let body = body.map_err(|e| body_error(&e))?;
    let obj: K = parse_body(&body)?;
    st.engine.put(&key, obj).await?;
    let stored = st.engine.world().get::<K>(&key)?;
    match stored {
        Some(o) => Ok(json(StatusCode::OK, &o)),
        None => Err(ApiError::internal(format!(
            "{}/{key} vanished after its write",
            K::PLURAL
        ))),
    }
}

async fn delete_object<K: Kind>(
    State(st): State<AppState>,
    key: KeyParam,
) -> Result<Response, ApiError> {
    let key = path_param("key", key)?;
    st.engine.delete::<K>(&key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) fn body_error(e: &axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("the request body is larger than {MAX_BODY} bytes"),
        )
    } else {
        ApiError::validation(format!("cannot read the request body: {e}"))
    }
}

/// Records every request in the metrics, by route template.
async fn record(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    st.metrics
        .requests
        .get_or_create(&vec![
            ("route", route.clone()),
            ("method", method.clone()),
            ("status", status),
        ])
        .inc();
    st.metrics
        .request_seconds
        .get_or_create(&vec![("route", route), ("method", method)])
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Writes go to the leader: a follower forwards them ([`forward`]), or answers 503 while
/// no leader is known.
async fn leader_only(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating {
        let role = st.role.borrow().clone();
        match role {
            Role::Leader => {}
            Role::Follower { leader: Some(url) } => {
                return st.forward.forward(&url, req).await;
            }
            Role::Follower { leader: None } => {
                return ApiError::unavailable(
                    "no netmaster leads right now; retry in a few seconds",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

async fn version() -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "name": "contiv-rs netmaster" }),
    )
}

async fn info(State(st): State<AppState>) -> Response {
    let role = st.role.borrow().clone();
    let (leader, leader_url) = match role {
        Role::Leader => (true, Some(st.info.advertise_url.clone())),
        Role::Follower { leader } => (false, leader),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "info": &*st.info,
            "isLeader": leader,
            "leaderURL": leader_url,
            "revision": st.engine.world().revision,
        }),
    )
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn fallback(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("{method} {}: no such API route", uri.path()))
}

/// The whole router, with `kinds` adding the object routes.
pub fn router(state: AppState, kinds: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Router {
    let r = Router::new()
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/api/v1/policy-explain/", get(explain::explain))
        .route("/api/v1/policy-explain", get(explain::explain))
        .route("/api/v1/feed/", get(feed::feed))
        .route("/api/v1/feed/hosts/", get(feed::list_reports))
        .route(
            "/api/v1/feed/hosts/{host}/",
            axum::routing::put(feed::put_report),
        )
        .route(
            "/api/v1/plugin/endpoints/",
            axum::routing::post(plugin::create),
        )
        .route(
            "/api/v1/plugin/endpoints/{id}/",
            axum::routing::delete(plugin::remove),
        )
        .route(
            "/api/v1/plugin/hosts/{host}/collect",
            axum::routing::post(plugin::collect),
        )
        .route("/api/v1/credentials/hosts/", get(credentials::list))
        .route("/api/v1/credentials/hosts", get(credentials::list))
        .route(
            "/api/v1/credentials/hosts/{host}/",
            axum::routing::post(credentials::create).delete(credentials::remove),
        )
        .route(
            "/api/v1/credentials/hosts/{host}",
            axum::routing::post(credentials::create).delete(credentials::remove),
        );
    kinds(r)
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), leader_only))
        .layer(middleware::from_fn_with_state(state.clone(), auth::check))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
