//! From a kernel policy hit back to its policy and hook, and on to a Tetragon event.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tetra_crds::compile::{AttachTarget, CompiledPolicy, UprobeLocation};

use crate::abi::GenericRecord;
pub use crate::events::generic::{HookInfo, HookSite};
use crate::events::{EventBuilder, Published};
use crate::process::cache::ProcessCache;
use crate::user_actions::Request;

/// What events need to know about a loaded policy, by the hook ids the kernel reports.
#[derive(Debug)]
pub struct PolicyInfo {
    pub id: u32,
    pub name: String,
    pub hooks: Vec<HookInfo>,
    /// Per hook, per selector: the GetUrl/DnsLookup requests of its matchActions.
    pub requests: Vec<Vec<Vec<Request>>>,
}

fn site(target: &AttachTarget) -> HookSite {
    match target {
        AttachTarget::Kprobe { symbol, .. } | AttachTarget::Fentry { symbol, .. } => {
            HookSite::Kprobe { function: symbol.clone() }
        }
        AttachTarget::Tracepoint { subsystem, event, .. } => {
            HookSite::Tracepoint { subsys: subsystem.clone(), event: event.clone() }
        }
        AttachTarget::Uprobe { path, location, .. } => {
            let (symbol, offset) = match location {
                UprobeLocation::Symbol(s) => (s.clone(), 0),
                UprobeLocation::Offset(o) | UprobeLocation::Address(o) => (String::new(), *o),
            };
            HookSite::Uprobe { path: path.clone(), symbol, offset }
        }
        AttachTarget::Lsm { hook } => HookSite::Lsm { function: hook.clone() },
        AttachTarget::Usdt { path, provider, name } => {
            HookSite::Usdt { path: path.clone(), provider: provider.clone(), name: name.clone() }
        }
    }
}

impl PolicyInfo {
    pub fn new(id: u32, compiled: &CompiledPolicy) -> PolicyInfo {
        let hooks = compiled
            .hooks
            .iter()
            .map(|h| HookInfo {
                site: site(&h.attach),
                args: h.args.iter().map(|a| (a.ty, a.label.clone())).collect(),
                ret: h.return_arg.as_ref().map(|a| (a.ty, a.label.clone())),
                message: h.message.clone().unwrap_or_default(),
                tags: h.tags.clone(),
            })
            .collect();
        let requests = compiled
            .hooks
            .iter()
            .map(|h| {
                let string = |a| h.action_string(a).unwrap_or_default().to_string();
                h.selectors
                    .iter()
                    .map(|s| {
                        s.actions
                            .iter()
                            .filter_map(|a| match a.code {
                                super::config::ACTION_GETURL => Some(Request::GetUrl(string(a))),
                                super::config::ACTION_DNSLOOKUP => Some(Request::DnsLookup(string(a))),
                                _ => None,
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        PolicyInfo { id, name: compiled.name.clone(), hooks, requests }
    }
}

/// Loaded policies by id, shared between whoever loads policies and the event thread.
#[derive(Default)]
pub struct PolicyTable {
    by_id: RwLock<HashMap<u32, Arc<PolicyInfo>>>,
}

impl PolicyTable {
    pub fn insert(&self, info: Arc<PolicyInfo>) {
        self.by_id.write().unwrap_or_else(|e| e.into_inner()).insert(info.id, info);
    }

    pub fn remove(&self, id: u32) {
        self.by_id.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    pub fn get(&self, id: u32) -> Option<Arc<PolicyInfo>> {
        self.by_id.read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    /// What the agent must fetch or resolve for this hit: the GetUrl/DnsLookup actions of
    /// the selector that matched (none when the policy is gone).
    pub fn requests(&self, rec: &GenericRecord) -> Vec<Request> {
        self.get(rec.msg.policy_id)
            .and_then(|p| p.requests.get(rec.msg.hook_id as usize)?.get(rec.msg.selector as usize).cloned())
            .unwrap_or_default()
    }
}

/// The event for a decoded `TETRA_MSG_GENERIC` record, or `None` when its policy has been
/// unloaded meanwhile (a hit still in the ring buffer). For `Processor::handle`.
pub fn handle_generic(
    table: &PolicyTable,
    cache: &ProcessCache,
    builder: &EventBuilder,
    rec: &GenericRecord,
) -> Option<Published> {
    let policy = table.get(rec.msg.policy_id)?;
    let hook = policy.hooks.get(rec.msg.hook_id as usize)?;
    let process = cache.shown_pid(rec.msg.pid, &builder.render);
    let parent =
        process.as_ref().and_then(|p| cache.shown(&p.process.parent_exec_id, &builder.render));
    // The processes stay shared with the cache (no copy per event).
    let event = builder.generic(&policy.name, hook, rec);
    Some(Published::new(event, [process, parent]))
}
