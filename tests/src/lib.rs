//! Shared helpers for the cross-crate integration and end-to-end suites.

pub mod fake_kube;
pub mod vm;
