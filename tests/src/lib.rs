//! Shared helpers for the cross-crate integration and end-to-end suites.

pub mod vm;
