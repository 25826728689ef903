//! `POST /chatkit`: the ChatKit protocol endpoint (JSON or Server-Sent Events).

use axum::Router;

use crate::app::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
}
