//! `/metrics`, `/healthz` and `/readyz` over HTTP (axum on the operator's tokio runtime).
//! GET and HEAD only; anything else is answered 405, unknown paths 404.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub metrics: bool,
    pub health: bool,
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{body}\n")).into_response()
}

/// The routes `endpoints` asks for.
pub fn router(endpoints: Endpoints, metrics: Arc<Metrics>) -> Router {
    let mut router = Router::new();
    if endpoints.metrics {
        let m = metrics.clone();
        router = router.route(
            "/metrics",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render())
            }),
        );
    }
    if endpoints.health {
        router = router.route("/healthz", get(|| async { text(StatusCode::OK, "ok") })).route(
            "/readyz",
            // Probes may add `?verbose`; the query changes nothing here.
            get(move || async move {
                if metrics.ready() {
                    text(StatusCode::OK, "ok")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "CRDs are not Established yet")
                }
            }),
        );
    }
    router.fallback(|| async { text(StatusCode::NOT_FOUND, "not found") })
}

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    let app = router(endpoints, metrics);
    let stop = async move { crate::stopped(&mut shutdown).await };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::warn!("HTTP server: {e}");
    }
}
