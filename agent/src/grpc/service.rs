//! The `tetragon.FineGuidanceSensors` RPCs this agent serves.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use tetra_proto::filter::{EventFilters, FieldFilters};
use tetra_proto::tetragon::fine_guidance_sensors_server::FineGuidanceSensors;
use tetra_proto::tetragon::*;
use tonic::{Request, Response, Status};

use super::stream::ClientStream;
use crate::bus::{Bus, SubscriberKind};
use crate::policies::{PolicyRegistry, RegistryError};
use crate::stats::Stats;

/// Largest per-client queue a client may ask for (`aggregation_options.channel_buffer_size`).
const MAX_CLIENT_QUEUE: u64 = 1 << 20;

#[derive(Clone)]
pub struct Service {
    pub bus: Arc<Bus>,
    pub policies: Arc<Mutex<PolicyRegistry>>,
    pub stats: Arc<Stats>,
    pub node: String,
    /// Events queued per client when it does not ask for a size.
    pub client_queue: usize,
    /// Kernel features probed at start (GetInfo).
    pub probes: Arc<Vec<crate::sys::Probe>>,
}

fn status(e: RegistryError) -> Status {
    match e {
        RegistryError::Invalid(_) => Status::invalid_argument(e.to_string()),
        RegistryError::Exists(_) => Status::already_exists(e.to_string()),
        RegistryError::NotFound(_) => Status::not_found(e.to_string()),
        RegistryError::CannotEnable { .. } => Status::failed_precondition(e.to_string()),
        RegistryError::Owned(_) => Status::permission_denied(e.to_string()),
    }
}

fn mode(m: Option<i32>) -> Result<Option<TracingPolicyMode>, Status> {
    match m {
        None => Ok(None),
        Some(v) => match TracingPolicyMode::try_from(v) {
            Ok(TracingPolicyMode::TpModeEnforce) => Ok(Some(TracingPolicyMode::TpModeEnforce)),
            Ok(TracingPolicyMode::TpModeMonitor) => Ok(Some(TracingPolicyMode::TpModeMonitor)),
            _ => Err(Status::invalid_argument(format!(
                "unsupported policy mode {v}: use enforce or monitor"
            ))),
        },
    }
}

impl Service {
    fn policies(&self) -> MutexGuard<'_, PolicyRegistry> {
        self.policies.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[tonic::async_trait]
impl FineGuidanceSensors for Service {
    type GetEventsStream = ClientStream;

    async fn get_events(
        &self,
        request: Request<GetEventsRequest>,
    ) -> Result<Response<ClientStream>, Status> {
        let peer =
            request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "unix".to_string());
        let req = request.into_inner();
        let filters = EventFilters::new(&req.allow_list, &req.deny_list)
            .map_err(|e| Status::invalid_argument(format!("invalid filter: {e}")))?;
        let fields = FieldFilters::new(&req.field_filters)
            .map_err(|e| Status::invalid_argument(format!("invalid field filter: {e}")))?;
        let capacity = match req.aggregation_options.map(|a| a.channel_buffer_size).unwrap_or(0) {
            0 => self.client_queue,
            n => n.min(MAX_CLIENT_QUEUE) as usize,
        };
        let (queue, sub) = self
            .bus
            .subscribe_async(SubscriberKind::GrpcClient, &peer, capacity, filters)
            .ok_or_else(|| Status::unavailable("the agent is shutting down"))?;
        self.stats.grpc_clients_total.fetch_add(1, Relaxed);
        tracing::info!("GetEvents client {peer} connected (id {})", sub.state.id);
        Ok(Response::new(ClientStream::new(queue, fields, self.node.clone(), sub)))
    }

    async fn get_health(
        &self,
        _: Request<GetHealthStatusRequest>,
    ) -> Result<Response<GetHealthStatusResponse>, Status> {
        Ok(Response::new(GetHealthStatusResponse {
            health_status: vec![HealthStatus {
                event: HealthStatusType::Status as i32,
                status: HealthStatusResult::HealthStatusRunning as i32,
                details: "running".into(),
            }],
        }))
    }

    async fn add_tracing_policy(
        &self,
        r: Request<AddTracingPolicyRequest>,
    ) -> Result<Response<AddTracingPolicyResponse>, Status> {
        let r = r.into_inner();
        let id = self.policies().add(&r.yaml, &r.domain, None).map_err(status)?;
        tracing::info!("tracing policy {id} added and enabled");
        Ok(Response::new(AddTracingPolicyResponse {}))
    }

    async fn delete_tracing_policy(
        &self,
        r: Request<DeleteTracingPolicyRequest>,
    ) -> Result<Response<DeleteTracingPolicyResponse>, Status> {
        let r = r.into_inner();
        self.policies().delete(&r.name, &r.namespace, &r.domain).map_err(status)?;
        Ok(Response::new(DeleteTracingPolicyResponse {}))
    }

    async fn list_tracing_policies(
        &self,
        r: Request<ListTracingPoliciesRequest>,
    ) -> Result<Response<ListTracingPoliciesResponse>, Status> {
        let policies = self.policies().list(&r.into_inner().domain);
        Ok(Response::new(ListTracingPoliciesResponse { policies }))
    }

    async fn configure_tracing_policy(
        &self,
        r: Request<ConfigureTracingPolicyRequest>,
    ) -> Result<Response<ConfigureTracingPolicyResponse>, Status> {
        let r = r.into_inner();
        let mode = mode(r.mode)?;
        self.policies()
            .configure(&r.name, &r.namespace, &r.domain, r.enable, mode)
            .map_err(status)?;
        Ok(Response::new(ConfigureTracingPolicyResponse {}))
    }

    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse { version: crate::VERSION.to_string() }))
    }

    async fn get_info(
        &self,
        _: Request<GetInfoRequest>,
    ) -> Result<Response<GetInfoResponse>, Status> {
        Ok(Response::new(GetInfoResponse {
            version: crate::VERSION.to_string(),
            name: "tetrad".into(),
            probes: self
                .probes
                .iter()
                .map(|p| get_info_response::Probe { name: p.name.into(), enabled: Some(p.enabled) })
                .collect(),
            conf: Vec::new(),
            build: None,
        }))
    }
}
