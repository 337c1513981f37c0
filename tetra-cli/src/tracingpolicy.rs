//! `tetra tracingpolicy ...` and the other one-shot RPCs (status, version).

use anyhow::{Context, Result};
use clap::Subcommand;
use tetra_proto::tetragon::{
    AddTracingPolicyRequest, ConfigureTracingPolicyRequest, DeleteTracingPolicyRequest,
    GetHealthStatusRequest, GetInfoRequest, GetVersionRequest, HealthStatusResult, ListTracingPoliciesRequest,
    TracingPolicyMode, TracingPolicyState, TracingPolicyStatus,
};

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum TracingPolicyCmd {
    /// Load a policy from a YAML file
    Add {
        file: std::path::PathBuf,
        /// Policy domain (grpc by default on the agent)
        #[arg(long, default_value = "")]
        domain: String,
    },
    /// Unload a policy
    Delete {
        name: String,
        #[arg(short, long, default_value = "")]
        namespace: String,
    },
    /// List loaded policies
    List {
        /// text or json
        #[arg(short, long, default_value = "text")]
        output: String,
    },
    /// Enable a loaded policy
    Enable {
        name: String,
        #[arg(short, long, default_value = "")]
        namespace: String,
    },
    /// Disable a loaded policy (keeps it loaded)
    Disable {
        name: String,
        #[arg(short, long, default_value = "")]
        namespace: String,
    },
    /// Check policy files offline (parse, validate, compile); no agent needed
    Validate {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

/// Offline validation: prints `FILE: OK` or one `FILE: <error>` per problem.
/// Returns true when every file is valid.
pub fn validate(files: &[std::path::PathBuf]) -> bool {
    let mut all_ok = true;
    for f in files {
        let name = f.display();
        match std::fs::read_to_string(f) {
            Err(e) => {
                all_ok = false;
                println!("{name}: cannot read: {e}");
            }
            Ok(text) => match tetra_crds::check_policy_yaml(&text) {
                Ok(_) => println!("{name}: OK"),
                Err(errors) => {
                    all_ok = false;
                    for e in errors {
                        println!("{name}: {e}");
                    }
                }
            },
        }
    }
    all_ok
}

fn rpc<T>(r: Result<tonic::Response<T>, tonic::Status>, what: &str) -> Result<T> {
    r.map(tonic::Response::into_inner).map_err(|s| anyhow::anyhow!("{what} failed: {}", s.message()))
}

pub async fn run(cmd: &TracingPolicyCmd, mut client: Client) -> Result<()> {
    match cmd {
        TracingPolicyCmd::Add { file, domain } => {
            let yaml = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            rpc(client.add_tracing_policy(AddTracingPolicyRequest { yaml, domain: domain.clone() }).await, "AddTracingPolicy")?;
            println!("tracing policy {} added", file.display());
        }
        TracingPolicyCmd::Delete { name, namespace } => {
            let req = DeleteTracingPolicyRequest { name: name.clone(), namespace: namespace.clone(), domain: String::new() };
            rpc(client.delete_tracing_policy(req).await, "DeleteTracingPolicy")?;
            println!("tracing policy {name:?} deleted");
        }
        TracingPolicyCmd::Enable { name, namespace } | TracingPolicyCmd::Disable { name, namespace } => {
            let enable = matches!(cmd, TracingPolicyCmd::Enable { .. });
            let req = ConfigureTracingPolicyRequest {
                name: name.clone(),
                namespace: namespace.clone(),
                enable: Some(enable),
                ..Default::default()
            };
            rpc(client.configure_tracing_policy(req).await, "ConfigureTracingPolicy")?;
            println!("tracing policy {name:?} {}", if enable { "enabled" } else { "disabled" });
        }
        TracingPolicyCmd::Validate { files } => {
            if !validate(files) {
                anyhow::bail!("some policies are invalid");
            }
        }
        TracingPolicyCmd::List { output } => {
            let resp = rpc(client.list_tracing_policies(ListTracingPoliciesRequest::default()).await, "ListTracingPolicies")?;
            match output.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&resp)?),
                "text" => print!("{}", policy_table(&resp.policies)),
                other => anyhow::bail!("unknown output format {other:?} (text or json)"),
            }
        }
    }
    Ok(())
}

fn short_state(state: i32) -> String {
    TracingPolicyState::try_from(state)
        .map(|s| s.as_str_name().trim_start_matches("TP_STATE_").to_ascii_lowercase())
        .unwrap_or_else(|_| state.to_string())
}

fn short_mode(mode: i32) -> String {
    TracingPolicyMode::try_from(mode)
        .map(|s| s.as_str_name().trim_start_matches("TP_MODE_").to_ascii_lowercase())
        .unwrap_or_else(|_| mode.to_string())
}

/// Columns as upstream: ID NAME DOMAIN STATE FILTERID NAMESPACE SENSORS KERNELMEMORY MODE NPOST NENFORCE NMONITOR.
pub fn policy_table(policies: &[TracingPolicyStatus]) -> String {
    let mut rows = vec![["ID", "NAME", "DOMAIN", "STATE", "FILTERID", "NAMESPACE", "SENSORS", "KERNELMEMORY", "MODE", "NPOST", "NENFORCE", "NMONITOR"].map(String::from).to_vec()];
    for p in policies {
        let c = p.stats.as_ref().and_then(|s| s.action_counters).unwrap_or_default();
        let namespace = if p.namespace.is_empty() { "(global)".to_string() } else { p.namespace.clone() };
        rows.push(vec![
            p.id.to_string(),
            p.name.clone(),
            p.domain.clone(),
            short_state(p.state),
            p.filter_id.to_string(),
            namespace,
            p.sensors.join(","),
            format!("{:.2} MB", p.kernel_memory_bytes as f64 / 1e6),
            short_mode(p.mode),
            c.post.to_string(),
            (c.signal + c.r#override + c.notify_enforcer + c.set).to_string(),
            (c.monitor_signal + c.monitor_override + c.monitor_notify_enforcer + c.monitor_set).to_string(),
        ]);
        // Where it came from (`file PATH` for --tracing-policy files), then why it is not enabled.
        if !p.info.is_empty() {
            rows.push(vec![String::new(), p.info.clone()]);
        }
        if !p.error.is_empty() {
            rows.push(vec![String::new(), format!("error: {}", p.error)]);
        }
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(i, s)| format!("{s:<w$}", w = widths[i])).collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

pub async fn status(mut client: Client) -> Result<()> {
    let resp = rpc(client.get_health(GetHealthStatusRequest::default()).await, "GetHealth")?;
    let mut ok = true;
    for h in &resp.health_status {
        ok &= h.status == HealthStatusResult::HealthStatusRunning as i32;
        println!("Health Status: {}", h.details);
    }
    if resp.health_status.is_empty() {
        println!("Health Status: unknown (no status reported)");
    }
    if !ok {
        anyhow::bail!("agent is not healthy");
    }
    Ok(())
}

/// `tetra info`: the agent's GetInfo answer as one JSON object (protojson names).
pub async fn info(mut client: Client) -> Result<()> {
    let resp = rpc(client.get_info(GetInfoRequest {}).await, "GetInfo")?;
    println!("{}", serde_json::to_string_pretty(&resp)?);
    Ok(())
}

pub async fn server_version(mut client: Client) -> Result<String> {
    Ok(rpc(client.get_version(GetVersionRequest {}).await, "GetVersion")?.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout() {
        let p = TracingPolicyStatus {
            id: 1,
            name: "fd-install".into(),
            domain: "grpc".into(),
            state: TracingPolicyState::TpStateEnabled as i32,
            sensors: vec!["generic_kprobe".into()],
            mode: TracingPolicyMode::TpModeEnforce as i32,
            error: String::new(),
            ..Default::default()
        };
        let t = policy_table(&[p]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID   NAME         DOMAIN   STATE"), "{t}");
        assert!(lines[1].contains("fd-install") && lines[1].contains("enabled") && lines[1].contains("(global)") && lines[1].contains("enforce"), "{t}");
        let refused = TracingPolicyStatus {
            id: 2,
            name: "fd-install".into(),
            domain: "static".into(),
            state: TracingPolicyState::TpStateError as i32,
            info: "file /etc/tp/b.yaml".into(),
            error: "duplicate name: tracing policy \"fd-install\" is already loaded from /etc/tp/a.yaml; /etc/tp/b.yaml not loaded".into(),
            ..Default::default()
        };
        let t = policy_table(&[refused]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].contains("fd-install") && lines[1].contains("static") && lines[1].contains("error"), "{t}");
        assert_eq!(lines[2].trim(), "file /etc/tp/b.yaml", "{t}");
        assert!(lines[3].trim().starts_with("error: duplicate name: tracing policy \"fd-install\" is already loaded from /etc/tp/a.yaml"), "{t}");
    }
}
