//! Writes that reach a follower are forwarded to the leader, credentials included, and
//! the leader's answer is returned as it is. (A redirect would not do: HTTP clients drop
//! `Authorization` when a redirect changes the host, so every authenticated write through
//! a follower would fail with 401.)
//!
//! The follower has already checked the caller's credentials ([`super::auth`]); the
//! leader checks them again, as for any request. A forwarded request carries
//! [`FORWARDED_BY`]: a netmaster that receives one while not leading answers 503 instead
//! of forwarding again, so a stale view of who leads cannot make requests go round.
//!
//! The leader gets the very path this netmaster authorized: a path the URL parser would
//! rewrite (dot segments, backslashes) is refused with 400. A netmaster that serves TLS
//! forwards only to an `https://` leader, so a caller's token never crosses in clear.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, MAX_BODY};

/// The header a forwarded request carries: the advertised URL of the follower that
/// forwarded it.
pub const FORWARDED_BY: &str = "x-contiv-forwarded-by";

/// The request headers passed on to the leader; everything else (hop-by-hop headers,
/// `Host`, cookies) stays behind.
const PASSED_ON: [HeaderName; 3] = [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT];

/// How long a forwarded write may take: the leader's group commit plus its watch.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client for forwarding writes to the leader.
#[derive(Debug, Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    /// This netmaster's advertised URL, sent in [`FORWARDED_BY`].
    me: String,
}

impl Forwarder {
    /// A forwarder for the netmaster advertised at `me`. `http` is the client to use
    /// (it carries the trust for the leader's TLS certificate, if any); its redirect
    /// policy must be `none` so an answer is passed on as it is.
    pub fn new(http: reqwest::Client, me: &str) -> Forwarder {
        Forwarder {
            http,
            me: me.to_string(),
        }
    }

    /// A plain client with the forwarder's timeouts and no redirects followed.
    pub fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
    }

    /// Sends `req` to the leader at `leader_url` and returns its answer.
    pub async fn forward(&self, leader_url: &str, req: Request) -> Response {
        if let Some(by) = req.headers().get(FORWARDED_BY) {
            let by = by.to_str().unwrap_or("another netmaster");
            return ApiError::unavailable(format!(
                "{by} forwarded this write here, but this netmaster does not lead either (the leader is changing); retry in a few seconds"
            ))
            .into_response();
        }
        // A netmaster that serves TLS sends no credential in clear: a leader advertised
        // over plain http (a netmaster started without --tls-cert, or an
        // --advertise-url typo) would get every forwarded token readable on the wire.
        if self.me.starts_with("https://") && !leader_url.starts_with("https://") {
            return ApiError::unavailable(format!(
                "the leader advertises {leader_url}, not https://: this netmaster serves TLS and does not forward credentials in clear (give every netmaster --tls-cert)"
            ))
            .into_response();
        }
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = format!("{}{path}", leader_url.trim_end_matches('/'));
        // The URL parser removes dot segments (`..`, `%2e%2e`) and reads `\` as `/`: the
        // leader would get another path than the one this netmaster authorized. A path
        // that a URL-built client (netctl, netplugin) sends comes through unchanged.
        match reqwest::Url::parse(&url) {
            Ok(u) if u.path() == parts.uri.path() => {}
            _ => {
                return ApiError::validation(format!(
                    "the path {:?} is not in its normal form (dot segments, backslashes or characters to escape); not forwarded to the leader",
                    parts.uri.path()
                ))
                .into_response();
            }
        }
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(e) => {
                return super::ApiError::new(
                    super::ErrorKind::TooLarge,
                    format!("cannot read the request body (at most {MAX_BODY} bytes): {e}"),
                )
                .into_response();
            }
        };
        let mut out = self.http.request(parts.method.clone(), &url).body(body);
        for name in &PASSED_ON {
            if let Some(v) = parts.headers.get(name) {
                out = out.header(name, v);
            }
        }
        out = out.header(FORWARDED_BY, &self.me);
        let answer = match out.send().await {
            Ok(a) => a,
            Err(e) => return unreachable(leader_url, &e).into_response(),
        };
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = match answer.bytes().await {
            Ok(b) => b,
            Err(e) => return unreachable(leader_url, &e).into_response(),
        };
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = status;
        if let Some(ct) = content_type
            && let Ok(v) = HeaderValue::from_bytes(ct.as_bytes())
        {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        resp
    }
}

/// The answer when the leader could not be asked or did not answer in full: 503, so the
/// caller retries. A write that timed out may still have been applied by the leader, as
/// with any timed-out request; Contiv's writes are idempotent puts and deletes.
fn unreachable(leader_url: &str, e: &reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "did not answer in time (the write may still have been applied)"
    } else {
        "is unreachable"
    };
    ApiError::unavailable(format!(
        "the leader at {leader_url} {what}: {e}; retry in a few seconds"
    ))
}
