//! The event model and gRPC API, wire-compatible with Tetragon.
