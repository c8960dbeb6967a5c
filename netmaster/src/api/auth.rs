//! Who may change intent. Listening only on loopback needs no credentials (the machine's
//! own users are trusted, as with Contiv). Listening anywhere else needs a bearer token
//! for every mutating call, unless netmaster was started with `--insecure`. The token is
//! never logged or returned.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, ErrorKind};

/// The access rule in force.
#[derive(Clone)]
pub enum Auth {
    /// No credentials needed (loopback only, or `--insecure`).
    Open,
    /// Mutating calls need `Authorization: Bearer <token>`.
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

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Auth::Token(token)) = (mutating, &st.auth) {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(g) if same(g.as_bytes(), token.expose().as_bytes()) => {}
            Some(_) => {
                return ApiError::new(ErrorKind::Unauthorized, "the bearer token is wrong")
                    .into_response();
            }
            None => {
                return ApiError::new(
                    ErrorKind::Unauthorized,
                    "this netmaster needs a token for changes: pass --token-file to netctl or set NETMASTER_TOKEN",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_comparison() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"ab"));
    }
}
