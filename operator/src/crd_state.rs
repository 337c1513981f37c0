//! How the install of each CRD ended: what the installer (`crds`) reports and the metrics
//! show. Its own module so that both depend on it and not on each other.

/// What an apply did to one CRD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The CRD did not exist.
    Created,
    /// The CRD existed and its spec changed (its generation moved).
    Upgraded,
    /// The CRD existed with the same spec.
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Upgraded => "upgraded",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// How the install of one CRD ended at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdState {
    Applied(Outcome),
    Failed,
}

impl CrdState {
    pub fn label(self) -> &'static str {
        match self {
            CrdState::Applied(o) => o.as_str(),
            CrdState::Failed => "failed",
        }
    }
}
