//! The gRPC server (`tetragon.FineGuidanceSensors`) on `--server-address`: TCP
//! `host:port` or `unix:///path` (socket mode 0600); the active address goes into the
//! info file that `tetra` reads.
mod service;
mod stream;

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{umask, Mode};

pub use service::Service;
use tetra_proto::tetragon::fine_guidance_sensors_server::FineGuidanceSensorsServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

/// Largest request a client may send (Tetragon's default).
pub const MAX_RECV_MSG_SIZE: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(String),
    Unix(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid server address {0:?}: use host:port or unix:///path")]
    Address(String),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: io::Error },
    #[error("cannot set up the socket {path}: {source}")]
    Socket { path: String, source: io::Error },
}

/// `""` disables the server.
pub fn parse_address(text: &str) -> Result<Option<Listen>, ServerError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(path) = text.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(ServerError::Address(text.to_string()));
        }
        return Ok(Some(Listen::Unix(PathBuf::from(path))));
    }
    let hostport = text.strip_prefix("http://").unwrap_or(text);
    match hostport.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => {
            // Go's ":54321" means every interface.
            let hostport = if hostport.starts_with(':') {
                format!("0.0.0.0{hostport}")
            } else {
                hostport.to_string()
            };
            Ok(Some(Listen::Tcp(hostport)))
        }
        _ => Err(ServerError::Address(text.to_string())),
    }
}

pub struct Server {
    /// What clients connect to: `ip:port` (the port really bound) or `unix:///path`.
    pub address: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    socket: Option<PathBuf>,
}

fn prepare_socket(path: &Path) -> Result<(), ServerError> {
    let err = |source| ServerError::Socket { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(err)?,
        Ok(_) => {
            return Err(err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )))
        }
        Err(_) => {}
    }
    Ok(())
}

impl Server {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(listen: Listen, service: Service) -> Result<Server, ServerError> {
        let svc =
            FineGuidanceSensorsServer::new(service).max_decoding_message_size(MAX_RECV_MSG_SIZE);
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = rx.await;
        };
        let router = tonic::transport::Server::builder().add_service(svc);
        match listen {
            Listen::Tcp(hostport) => {
                let listener = tokio::net::TcpListener::bind(&hostport)
                    .await
                    .map_err(|source| ServerError::Bind { address: hostport.clone(), source })?;
                let address = listener
                    .local_addr()
                    .map_err(|source| ServerError::Bind { address: hostport.clone(), source })?
                    .to_string();
                let incoming = TcpListenerStream::new(listener);
                let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
                Ok(Server { address, shutdown: Some(tx), task, socket: None })
            }
            Listen::Unix(path) => {
                prepare_socket(&path)?;
                let address = format!("unix://{}", path.display());
                // Created 0600 from the start (connect() needs write permission), so no
                // other user can connect between bind() and the chmod below.
                // umask() swaps this process's file mode creation mask; it is called at
                // start-up before any other thread of ours creates files.
                let old_mask = umask(Mode::from_bits_truncate(0o177));
                let bound = tokio::net::UnixListener::bind(&path);
                umask(old_mask);
                let listener = bound
                    .map_err(|source| ServerError::Bind { address: address.clone(), source })?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |source| ServerError::Socket { path: path.display().to_string(), source },
                )?;
                let incoming = UnixListenerStream::new(listener);
                let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
                Ok(Server { address, shutdown: Some(tx), task, socket: Some(path) })
            }
        }
    }

    /// Stops accepting, waits a little for streams to end (the bus must be closed
    /// first so they do), and removes the socket file.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(std::time::Duration::from_secs(2), &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("gRPC server: {e}"),
            Ok(Err(e)) => tracing::warn!("gRPC server task: {e}"),
            Err(_) => {
                tracing::warn!("gRPC server did not stop in time");
                self.task.abort();
            }
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `<run_dir>/tetragon-info.json` (atomically) with the active addresses.
pub fn write_info_file(path: &Path, server_address: &str, metrics_address: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::json!({
        "server_address": server_address,
        "metrics_address": metrics_address,
        "version": crate::VERSION,
        "pid": std::process::id(),
    });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, format!("{text}\n"))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_address("").unwrap(), None);
        assert_eq!(
            parse_address("localhost:54321").unwrap(),
            Some(Listen::Tcp("localhost:54321".into()))
        );
        assert_eq!(parse_address(":2112").unwrap(), Some(Listen::Tcp("0.0.0.0:2112".into())));
        assert_eq!(parse_address("[::1]:5").unwrap(), Some(Listen::Tcp("[::1]:5".into())));
        assert_eq!(
            parse_address("unix:///run/t.sock").unwrap(),
            Some(Listen::Unix("/run/t.sock".into()))
        );
        assert!(parse_address("unix://relative").is_err());
        assert!(parse_address("localhost").is_err());
        assert!(parse_address("h:99999").is_err());
    }
}
