//! Exporters: where finished events go.
pub mod json;
