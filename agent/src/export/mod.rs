//! Exporters: where finished events go.
pub mod exporter;
pub mod json;
pub mod ratelimit;
