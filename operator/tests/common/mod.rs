//! A scripted fake API server: kube's real `Client` over a `tower_test` mock service, so a
//! test receives every HTTP request the code under test sends, checks it and answers it.
#![allow(dead_code)] // each test file uses a part

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub struct FakeApi {
    handle: Handle,
}

/// One request as the API server would see it.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: String,
    /// The body parsed as JSON (Null when empty).
    pub body: Value,
    respond: tower_test::mock::SendResponse<Response<Body>>,
}

impl Req {
    /// Answers with `code` and a JSON body.
    pub fn reply(self, code: u16, body: Value) {
        let bytes = serde_json::to_vec(&body).expect("serializing a reply");
        let response = Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .expect("building a reply");
        self.respond.send_response(response);
    }

    /// Answers with a `Status` failure, as the API server does.
    pub fn fail(self, code: u16, reason: &str, message: &str) {
        self.reply(code, status(code, reason, message));
    }
}

pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A client talking to the returned fake.
pub fn client() -> (kube::Client, FakeApi) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), FakeApi { handle })
}

impl FakeApi {
    /// The next request; fails the test if none comes within 10 s of (possibly paused)
    /// time.
    pub async fn next(&mut self) -> Req {
        self.try_next().await.expect("the client went away")
    }

    /// The next request, or None once every client is dropped.
    pub async fn try_next(&mut self) -> Option<Req> {
        let got = tokio::time::timeout(Duration::from_secs(10), self.handle.next_request())
            .await
            .expect("no request reached the fake API server within 10s");
        let (request, respond) = got?;
        let (parts, body) = request.into_parts();
        let bytes = body
            .collect_bytes()
            .await
            .expect("reading the request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Some(Req {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query,
            content_type,
            body,
            respond,
        })
    }

    /// The next request, which must be `method path`.
    pub async fn expect(&mut self, method: &str, path: &str) -> Req {
        let req = self.next().await;
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            (method, path),
            "unexpected request (body {})",
            req.body
        );
        req
    }
}
