//! `GET /chatkit/suggestions`: lesson-aware prompt suggestions.

use axum::Router;

use crate::app::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
}
