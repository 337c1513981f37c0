//! A small fake Kubernetes API server on localhost, for tests of the agent's controllers:
//! real HTTP/1.1 over TCP, list and watch (chunked streams of watch events, resuming from a
//! resourceVersion), get, create, merge-patch and delete of any resource under the usual
//! paths (`/api/v1/...`, `/apis/<group>/<version>/...`, with or without a namespace), and a
//! `spec.nodeName` field selector. Tests change objects in-process ([`FakeKube::put`],
//! [`FakeKube::delete`]) exactly as a client would, and read what clients created (Events).
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// (resource plural, namespace or "", name)
type Key = (String, String, String);

struct Change {
    rv: u64,
    resource: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    changes: Vec<Change>,
    /// Every request, as "METHOD path?query".
    requests: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

pub struct FakeKube {
    pub address: String,
    shared: Arc<Shared>,
}

/// A parsed API path.
struct Target {
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.first()? {
        &"api" => parts.get(2..)?,
        &"apis" => parts.get(3..)?,
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        rest => (None, rest),
    };
    match rest {
        [resource] => Some(Target {
            resource: resource.to_string(),
            namespace,
            name: None,
        }),
        [resource, name] => Some(Target {
            resource: resource.to_string(),
            namespace,
            name: Some(name.to_string()),
        }),
        _ => None,
    }
}

fn query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `obj` passes a field selector (`spec.nodeName=x`, `metadata.name=x`, comma-ANDed).
fn fields_match(obj: &Value, selector: Option<&String>) -> bool {
    selector
        .into_iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .all(|term| {
            let Some((field, want)) = term.split_once('=') else {
                return true;
            };
            let want = want.trim_start_matches('=');
            let got = field.split('.').fold(obj, |v, k| &v[k]);
            got.as_str().unwrap_or("") == want
        })
}

fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

impl State {
    /// Creates or replaces an object; bumps resourceVersion, and generation when the spec
    /// changed (as the API server does for custom resources).
    fn put(&mut self, resource: &str, mut obj: Value) -> Value {
        self.rv += 1;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = (resource.to_string(), ns, name.clone());
        let old = self.objects.get(&key);
        let generation = match old {
            Some(old) if old["spec"] == obj["spec"] => {
                old["metadata"]["generation"].as_u64().unwrap_or(1)
            }
            Some(old) => old["metadata"]["generation"].as_u64().unwrap_or(1) + 1,
            None => 1,
        };
        let uid = match old {
            Some(old) => old["metadata"]["uid"].clone(),
            None => obj["metadata"]["uid"]
                .as_str()
                .map_or_else(|| json!(format!("uid-{name}-{}", self.rv)), |u| json!(u)),
        };
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["generation"] = json!(generation);
        meta["uid"] = uid;
        if meta["creationTimestamp"].is_null() {
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        self.objects.insert(key, obj.clone());
        self.changes.push(Change {
            rv: self.rv,
            resource: resource.to_string(),
            kind,
            object: obj.clone(),
        });
        obj
    }

    fn delete(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.changes.push(Change {
            rv: self.rv,
            resource: key.0.clone(),
            kind: "DELETED",
            object: obj.clone(),
        });
        Some(obj)
    }
}

fn respond(stream: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let text = body.to_string();
    let reason = match code {
        200 => "OK",
        201 => "Created",
        404 => "Not Found",
        _ => "Error",
    };
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
}

fn not_found(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{what} not found")})
}

impl FakeKube {
    pub fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API server");
        let address = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        FakeKube { address, shared }
    }

    /// A kubeconfig file pointing at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\nusers:\n- name: test\n  user: {{token: test-token}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: test, namespace: default}}\ncurrent-context: fake\n",
            self.address
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    /// Creates or replaces an object of `resource` (plural, e.g. "pods"); returns it as stored.
    pub fn put(&self, resource: &str, obj: Value) -> Value {
        let stored = self.state().put(resource, obj);
        self.shared.changed.notify_all();
        stored
    }

    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.state()
            .delete(&(resource.into(), namespace.into(), name.into()));
        self.shared.changed.notify_all();
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .objects
            .get(&(resource.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Objects of `resource` clients created or patched (e.g. "events").
    pub fn objects(&self, resource: &str) -> Vec<Value> {
        self.state()
            .objects
            .iter()
            .filter(|(k, _)| k.0 == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// Waits until some object of `resource` satisfies `pred`.
    pub fn wait_object(
        &self,
        resource: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.objects(resource).into_iter().find(|o| pred(o)) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.changed.notify_all();
        // Wake the accept loop so it sees the stop flag.
        let _ = TcpStream::connect(self.address.trim_start_matches("http://"));
    }
}

fn serve(conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut stream = conn;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (method, uri) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let mut length = 0usize;
    let mut content_type = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("content-type") {
                content_type = v.trim().to_string();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (path, q) = uri.split_once('?').unwrap_or((&uri, ""));
    let q = query(q);
    shared
        .state
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {uri}"));
    let Some(t) = parse_path(path) else {
        return respond(&mut stream, 404, &not_found(path));
    };
    let ns = t.namespace.clone().unwrap_or_default();
    match (method.as_str(), &t.name) {
        ("GET", None) if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => {
            watch(stream, shared, &t, &q)
        }
        ("GET", None) => {
            let state = shared.state.lock().unwrap();
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(k, o)| {
                    k.0 == t.resource
                        && (t.namespace.is_none() || k.1 == ns)
                        && fields_match(o, q.get("fieldSelector"))
                })
                .map(|(_, o)| o.clone())
                .collect();
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": state.rv.to_string()}, "items": items});
            drop(state);
            respond(&mut stream, 200, &list)
        }
        ("GET", Some(name)) => {
            let obj = shared
                .state
                .lock()
                .unwrap()
                .objects
                .get(&(t.resource.clone(), ns, name.clone()))
                .cloned();
            match obj {
                Some(o) => respond(&mut stream, 200, &o),
                None => respond(&mut stream, 404, &not_found(name)),
            }
        }
        ("POST", None) => {
            let mut obj = body;
            if t.namespace.is_some() {
                obj["metadata"]["namespace"] = json!(ns);
            }
            let stored = shared.state.lock().unwrap().put(&t.resource, obj);
            shared.changed.notify_all();
            respond(&mut stream, 201, &stored)
        }
        ("PATCH" | "PUT", Some(name)) => {
            let key = (t.resource.clone(), ns, name.clone());
            let mut state = shared.state.lock().unwrap();
            // Server-side apply creates what does not exist yet.
            let applying = content_type == "application/apply-patch+yaml";
            let Some(mut obj) = state
                .objects
                .get(&key)
                .cloned()
                .or(applying.then(|| json!({})))
            else {
                drop(state);
                return respond(&mut stream, 404, &not_found(name));
            };
            if method == "PUT" {
                obj = body;
            } else {
                merge(&mut obj, &body);
            }
            let stored = state.put(&t.resource, obj);
            drop(state);
            shared.changed.notify_all();
            respond(&mut stream, 200, &stored)
        }
        ("DELETE", Some(name)) => {
            let gone = shared
                .state
                .lock()
                .unwrap()
                .delete(&(t.resource.clone(), ns, name.clone()));
            shared.changed.notify_all();
            match gone {
                Some(o) => respond(&mut stream, 200, &o),
                None => respond(&mut stream, 404, &not_found(name)),
            }
        }
        _ => respond(&mut stream, 404, &not_found(&uri)),
    }
}

/// Streams the changes after `resourceVersion` as chunked watch events until the client
/// goes, `timeoutSeconds` passes or the server stops.
fn watch(
    mut stream: TcpStream,
    shared: &Shared,
    t: &Target,
    q: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    let mut from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(290u64);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
    stream.flush()?;
    let ns = t.namespace.clone();
    let mut state = shared.state.lock().unwrap();
    while !shared.stop.load(Relaxed) && Instant::now() < deadline {
        let lines: Vec<String> = state
            .changes
            .iter()
            .filter(|c| c.rv > from && c.resource == t.resource)
            .filter(|c| {
                ns.as_ref()
                    .is_none_or(|ns| c.object["metadata"]["namespace"] == json!(ns))
            })
            .filter(|c| fields_match(&c.object, q.get("fieldSelector")))
            .map(|c| format!("{}\n", json!({"type": c.kind, "object": c.object})))
            .collect();
        from = state.rv;
        drop(state);
        for line in lines {
            write!(stream, "{:x}\r\n{line}\r\n", line.len())?;
        }
        stream.flush()?;
        state = shared.state.lock().unwrap();
        if state.rv == from {
            state = shared
                .changed
                .wait_timeout(state, Duration::from_millis(200))
                .unwrap()
                .0;
        }
    }
    drop(state);
    write!(stream, "0\r\n\r\n")
}
