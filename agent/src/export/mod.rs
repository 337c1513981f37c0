//! Exporters: where finished events go.
pub mod exporter;
pub mod json;
pub mod line;
pub mod ratelimit;
