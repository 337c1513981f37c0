//! JSON lines in Tetragon's export format (protojson, proto field names).

use crate::tetragon::GetEventsResponse;

/// A line that is not a valid `GetEventsResponse` JSON object.
#[derive(Debug, thiserror::Error)]
#[error("invalid event JSON: {0}")]
pub struct ParseError(#[from] serde_json::Error);

/// Serializes one event as a single JSON line (no trailing newline).
pub fn to_line(event: &GetEventsResponse) -> String {
    // Serializing generated messages to a String cannot fail: every map key
    // is a string and no custom Serialize impl returns an error.
    serde_json::to_string(event).unwrap_or_default()
}

/// Parses one JSON line. Unknown fields are ignored.
pub fn from_line(line: &str) -> Result<GetEventsResponse, ParseError> {
    Ok(serde_json::from_str(line)?)
}
