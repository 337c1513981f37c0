//! The node agent: kernel sensors, process cache, enrichment and export.
pub mod abi;
pub mod clock;
pub mod events;
pub mod export;
pub mod pipeline;
pub mod process;
pub mod sensors;
pub mod stats;
pub mod sys;
