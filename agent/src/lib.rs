//! The node agent: kernel sensors, process cache, enrichment and export.
pub mod abi;
pub mod bus;
pub mod clock;
pub mod events;
pub mod export;
pub mod grpc;
pub mod k8s;
pub mod maxdata;
pub mod metrics;
pub mod pipeline;
pub mod policies;
pub mod process;
pub mod sensors;
pub mod stats;
pub mod sys;
pub mod user_actions;

/// The agent's version, as GetVersion and `tetragon_build_info` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
