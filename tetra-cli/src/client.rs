//! gRPC connection to the agent's FineGuidanceSensors service.

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use tetra_proto::tetragon::fine_guidance_sensors_client::FineGuidanceSensorsClient;
use tonic::transport::{Channel, Endpoint};

/// Where the agent records its active gRPC address.
pub const INFO_FILE: &str = "/var/run/tetragon/tetragon-info.json";
pub const DEFAULT_ADDRESS: &str = "localhost:54321";

/// `--server-address`, else `server_address` from the info file, else the default.
pub fn resolve_address(flag: Option<&str>, info_file: &std::path::Path) -> String {
    if let Some(a) = flag.filter(|a| !a.is_empty()) {
        return a.to_string();
    }
    std::fs::read_to_string(info_file)
        .ok()
        .and_then(|t| address_from_info(&t))
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string())
}

fn address_from_info(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let a = v.get("server_address")?.as_str()?;
    (!a.is_empty()).then(|| a.to_string())
}

pub type Client = FineGuidanceSensorsClient<Channel>;

/// Connects to `host:port`, `http(s)://host:port` or `unix:///path`.
pub async fn connect(address: &str, timeout: std::time::Duration) -> Result<Client> {
    let channel = if let Some(path) = address.strip_prefix("unix://") {
        let path = path.to_string();
        Endpoint::from_static("http://localhost")
            .connect_timeout(timeout)
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }))
            .await
    } else {
        let uri = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        Endpoint::from_shared(uri)
            .with_context(|| format!("invalid server address {address:?}"))?
            .connect_timeout(timeout)
            .connect()
            .await
    }
    .with_context(|| format!("cannot connect to the agent at {address}"))?;
    Ok(FineGuidanceSensorsClient::new(channel).max_decoding_message_size(10 * 1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_file_and_flag() {
        assert_eq!(address_from_info(r#"{"server_address":"unix:///run/t.sock","version":"x"}"#).as_deref(), Some("unix:///run/t.sock"));
        assert_eq!(address_from_info(r#"{"server_address":""}"#), None);
        assert_eq!(address_from_info("garbage"), None);
        let missing = std::path::Path::new("/nonexistent/tetragon-info.json");
        assert_eq!(resolve_address(Some("10.0.0.1:1"), missing), "10.0.0.1:1");
        assert_eq!(resolve_address(None, missing), DEFAULT_ADDRESS);
    }
}
