//! The object kinds served by the API (filled from the model crate).

use axum::Router;

use crate::api::{ApiError, AppState};
use crate::intent::Engine;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r
}

pub async fn ensure_defaults(_engine: &Engine) -> Result<(), ApiError> {
    Ok(())
}
