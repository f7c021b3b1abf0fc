//! Generated hostile requests (bodies, headers, paths, query strings) from a fixed seed: the
//! service never answers 5xx, every refusal is a problem document, and nothing is stored from
//! a refused request.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json as body};

use crate::on_both_databases;
use crate::support::{Backend, spawn_app};

/// A small deterministic generator (xorshift), so a failure replays from its seed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn text(&mut self) -> String {
        let pieces = [
            "",
            "a",
            "busybox",
            "/",
            "..",
            "-",
            "UPPER",
            "ü✓",
            "\u{0}",
            "\n",
            "\"",
            "'",
            "$(id)",
            "a=b",
            "%",
            "../../etc",
            " ",
            "x".repeat(300).leak(),
            "9",
            ":",
            "@",
            "\u{202e}",
        ];
        (0..self.below(4)).map(|_| self.pick(&pieces)).collect()
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json_bool(self.below(2) == 0),
            2 => body!(
                self.pick(&["-1", "0", "1", "1e999", "9223372036854775808", "-0.5"])
                    .parse::<f64>()
                    .unwrap_or(0.0)
            ),
            3 => body!(i64::MAX - self.below(3) as i64),
            4 => Value::String(self.text()),
            5 => Value::Array((0..self.below(3)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut object = Map::new();
                for _ in 0..self.below(4) {
                    object.insert(self.text(), self.value(depth + 1));
                }
                Value::Object(object)
            }
        }
    }

    /// A submission that is mostly right, with some fields replaced by anything.
    fn submission(&mut self) -> Value {
        let mut request = body!({"image": "busybox", "command": "echo hi"});
        let fields = [
            "image",
            "command",
            "name",
            "registry_secret",
            "volume_claim",
            "mount_path",
            "env",
            "labels",
            "resources",
            "backoff_limit",
            "active_deadline_seconds",
            "ttl_seconds_after_finished",
            "privileged",
            "hostNetwork",
            "serviceAccountName",
        ];
        for _ in 0..self.below(3) {
            let field = self.pick(&fields);
            request[field] = self.value(0);
        }
        request
    }
}

fn json_bool(value: bool) -> Value {
    Value::Bool(value)
}

async fn no_generated_request_gets_a_server_error_or_stores_anything_when_refused(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut generator = Generator(0x5eed_1234_abcd_9876);
    let mut expected_stored = 0usize;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let paths = [
        "/v1/submissions",
        "/v1/submissions/batch",
        "/v1/submissions/cancel",
        "/v1/submissions/%00",
        "/v1/submissions/01935f2e-8c4a-7b3d-9e2f-123456789abc/logs",
        "/v1/jobs",
        "/v1/pods",
        "/v1/submissions/../../etc/passwd",
        "/v1/submissions/x/cancel",
    ];
    let queries = [
        "",
        "?state=%ff",
        "?limit=-1",
        "?label=a",
        "?cursor=%00",
        "?follow=maybe",
        "?tail_lines=1e9",
        "?owner=bob",
        "?label_selector=!!",
    ];
    let content_types = [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/merge-patch+json",
        "",
    ];

    for round in 0..300 {
        // Mostly well-aimed (a submit or a batch, sent as JSON), so that some are stored.
        let (path, payload) = match generator.below(3) {
            0 => ("/v1/submissions".to_owned(), generator.submission()),
            1 => {
                let count = generator.below(4);
                let submissions: Vec<Value> = (0..count).map(|_| generator.submission()).collect();
                (
                    "/v1/submissions/batch".to_owned(),
                    body!({"submissions": submissions}),
                )
            }
            _ => {
                let path = format!("{}{}", generator.pick(&paths), generator.pick(&queries));
                (path, generator.value(0))
            }
        };
        let methods = [
            Method::POST,
            Method::POST,
            Method::POST,
            Method::GET,
            Method::DELETE,
        ];
        let method = methods[generator.below(methods.len())].clone();
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .body(payload.to_string());
        let content_type = if generator.below(4) == 0 {
            generator.pick(&content_types)
        } else {
            "application/json"
        };
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        if generator.below(4) == 0 {
            request = request.header("idempotency-key", generator.text());
        }
        if generator.below(6) == 0 {
            request = request.header("x-on-behalf-of", generator.text());
        }
        let Ok(response) = request.send().await else {
            continue; // a header reqwest itself refuses to send
        };
        let status = response.status();
        let replayed = response.headers().contains_key("idempotent-replayed");
        *statuses.entry(status.as_u16()).or_default() += 1;
        let content = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap_or_default();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "round {round}: {method} {path} with {payload} answered {status}: {text}"
        );
        if status.is_client_error() {
            assert_eq!(
                content, "application/problem+json",
                "round {round}: {method} {path}: {text}"
            );
        }
        if status == StatusCode::CREATED && !replayed {
            let created: Value = serde_json::from_str(&text).unwrap_or_default();
            expected_stored += created["submissions"].as_array().map_or(1, Vec::len);
        }
    }

    crate::support::report(&format!(
        "hostile requests ({backend:?}): answers by status {statuses:?}"
    ));
    let stored = app.list_all("").await.len();
    assert_eq!(
        stored, expected_stored,
        "stored submissions versus acknowledged ones"
    );
}
on_both_databases!(no_generated_request_gets_a_server_error_or_stores_anything_when_refused);
