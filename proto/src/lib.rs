//! The event model and gRPC API, wire-compatible with Tetragon's `tetragon`
//! protobuf package.
//!
//! - [`tetragon`]: generated messages, enums and the `FineGuidanceSensors`
//!   client/server (tonic). JSON (serde) follows protojson with proto field
//!   names, like Tetragon's export.
//! - [`json`]: one event <-> one JSON line.
//! - [`filter`]: export filters (allow/deny lists, field filters, redaction).

#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod tetragon {
    include!(concat!(env!("OUT_DIR"), "/tetragon.rs"));
    include!(concat!(env!("OUT_DIR"), "/tetragon.serde.rs"));
}

pub mod event;
pub mod field_mask;
pub mod filter;
pub mod json;
pub mod timestamp;

pub use field_mask::FieldMask;
pub use timestamp::Timestamp;
