//! The retention sweep on a running server: at start and every [`INTERVAL`]. The rules and the
//! sweep itself are `ocular_app::retention`'s, shared with `ocular purge`.

pub use ocular_app::retention::{INTERVAL, ORPHAN_GRACE, Policy, Swept, sweep};

use crate::state::AppState;

/// Sweeps at once, then every [`INTERVAL`], for as long as the server runs. A failed sweep is
/// logged and tried again at the next tick.
pub async fn run(state: AppState) {
    let policy = Policy::from_config(&state.config);
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tick.tick().await;
        match state.db(move |s| sweep(s, &policy)).await {
            Ok(s) if s == Swept::default() => {}
            Ok(s) => tracing::info!(
                analyses_deleted = s.analyses_deleted,
                analysis_images_purged = s.analysis_images_purged,
                product_images_purged = s.product_images_purged,
                "retention sweep"
            ),
            Err(e) => tracing::warn!(error = %ocular_models::registry::error_chain(&e), "retention sweep failed"),
        }
    }
}
