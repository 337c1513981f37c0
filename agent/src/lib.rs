//! The node agent: kernel sensors, process cache, enrichment and export.
pub mod abi;
pub mod sensors;
