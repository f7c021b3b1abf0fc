//! `GET /v1/events`: each change of state as a Server-Sent Event, only the caller's, filtered,
//! and resumed from a revision without a gap, across a restart of the service.
//!
//! State changes are made as users and the controller make them: submitting and cancelling over
//! HTTP, and the controller's updates through the store (no cluster here).

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json as body};
use submission_helper::cluster::Cluster;
use submission_helper::domain::{Progress, State};
use submission_helper::http::event_stream::EventStreams;
use submission_helper::storage::Store;
use tokio::time::Instant;

use crate::on_both_databases;
use crate::support::{
    Backend, TestApp, TestDatabase, eventually, fields, json, problem, spawn_app,
};

/// How long a test waits for something the stream must send.
const PATIENCE: Duration = Duration::from_secs(20);

/// One block of the stream: an event, a bare `id`, or a comment.
#[derive(Debug, Default)]
pub struct Frame {
    pub id: Option<i64>,
    pub event: Option<String>,
    pub data: Option<Value>,
    pub comment: Option<String>,
}

/// An open `GET /v1/events`, read block by block.
pub struct EventStream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: String,
}

impl EventStream {
    /// Opens the stream at `path` (with its query) and checks it is one.
    pub async fn open(client: &Client, url: &str, last_event_id: Option<i64>) -> Self {
        let mut request = client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status != StatusCode::OK {
            panic!("{status}: {}", response.text().await.unwrap_or_default());
        }
        assert_eq!(content_type, "text/event-stream");
        EventStream {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next block, or `None` if none came within `wait`.
    pub async fn frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()?;
            let chunk = chunk.expect("the stream ended").expect("the stream broke");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `state` event's data, or `None` if none came within `wait`.
    pub async fn state_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let frame = self.frame_within(deadline - Instant::now()).await?;
            if frame.event.as_deref() == Some("state") {
                let data = frame.data.expect("a state event has data");
                assert_eq!(Some(&data["revision"]), frame.id.map(Value::from).as_ref());
                return Some(data);
            }
        }
    }

    /// The next `n` state events.
    pub async fn states(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let event = self.state_within(PATIENCE).await;
            events.push(event.unwrap_or_else(|| {
                panic!("only {} of {n} events came: {events:#?}", events.len())
            }));
        }
        events
    }
}

fn parse(block: &str) -> Frame {
    let mut frame = Frame::default();
    for line in block.lines().filter(|line| !line.is_empty()) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => frame.comment = Some(value.to_owned()),
            "id" => frame.id = Some(value.parse().expect("a numeric id")),
            "event" => frame.event = Some(value.to_owned()),
            "data" => frame.data = Some(serde_json::from_str(value).expect("JSON data")),
            _ => {}
        }
    }
    frame
}

pub async fn open(app: &TestApp, query: &str) -> EventStream {
    EventStream::open(&app.client, &app.url(&format!("/v1/events{query}")), None).await
}

/// A stream opened at the present, once it has said where the present is.
async fn open_now(app: &TestApp, client: &Client, query: &str) -> (EventStream, i64) {
    let mut stream = EventStream::open(client, &app.url(&format!("/v1/events{query}")), None).await;
    let first = stream
        .frame_within(PATIENCE)
        .await
        .expect("the first block");
    assert!(first.event.is_none() && first.data.is_none(), "{first:?}");
    (stream, first.id.expect("the present revision"))
}

fn sample(name: &str, labels: Value) -> Value {
    body!({"name": name, "image": "busybox", "command": "true", "labels": labels})
}

async fn submit_as(app: &TestApp, client: &Client, body: Value) -> String {
    let response = app.post_as(client, "/v1/submissions", &body).await;
    let stored = json(response, StatusCode::CREATED).await;
    stored["id"].as_str().expect("id").to_owned()
}

async fn cancel(app: &TestApp, id: &str) {
    let response = app
        .post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Moves a submission to `state` as the controller would.
async fn record(store: &Store, id: &str, state: State, message: Option<&str>) {
    store
        .update(id.parse().expect("id"), |current| {
            Some(Progress {
                state,
                message: message.map(str::to_owned),
                finished_at: state.is_final().then(Timestamp::now),
                ..current.progress.clone()
            })
        })
        .await
        .expect("update")
        .expect("stored");
}

fn changes(events: &[Value]) -> Vec<(String, Value, Value)> {
    events
        .iter()
        .map(|event| {
            (
                event["id"].as_str().unwrap_or_default().to_owned(),
                event["previous_state"].clone(),
                event["state"].clone(),
            )
        })
        .collect()
}

async fn a_stream_delivers_each_change_of_a_submission_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let (mut stream, present) = open_now(&app, &app.client, "").await;
    let mut merge = sample("merge", body!({}));
    merge["depends_on"] = body!(["sample"]);
    let response = app
        .post_json(
            "/v1/submissions/batch",
            &body!({"submissions": [sample("sample", body!({"campaign": "mc16e"})), merge]}),
        )
        .await;
    let stored = json(response, StatusCode::CREATED).await;
    let sample = stored["submissions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let merge = stored["submissions"][1]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    record(&store, &sample, State::Pending, None).await;
    record(&store, &sample, State::Running, None).await;
    record(&store, &sample, State::Succeeded, Some("done")).await;
    cancel(&app, &merge).await;

    let events = stream.states(6).await;
    assert_eq!(
        changes(&events),
        [
            (sample.clone(), Value::Null, body!("queued")),
            (merge.clone(), Value::Null, body!("waiting")),
            (sample.clone(), body!("queued"), body!("pending")),
            (sample.clone(), body!("pending"), body!("running")),
            (sample.clone(), body!("running"), body!("succeeded")),
            (merge.clone(), body!("waiting"), body!("queued")),
        ]
    );
    let revisions: Vec<i64> = events
        .iter()
        .map(|e| e["revision"].as_i64().unwrap_or(0))
        .collect();
    let expected: Vec<i64> = (present + 1..=present + 6).collect();
    assert_eq!(
        revisions, expected,
        "one revision each, in order, none skipped"
    );
    assert_eq!(events[0]["name"], "sample");
    assert_eq!(events[0]["labels"], body!({"campaign": "mc16e"}));
    assert_eq!(events[1]["labels"], body!({}));
    assert_eq!(events[4]["message"], "done");
    assert!(
        events[0]["time"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok())
    );
    let cancelled = stream.states(1).await;
    assert_eq!(
        changes(&cancelled),
        [(merge, body!("queued"), body!("cancelled"))]
    );
    assert!(cancelled[0]["message"].is_string(), "{cancelled:?}");
}
on_both_databases!(a_stream_delivers_each_change_of_a_submission_in_order);

async fn a_user_sees_only_their_own_changes_and_an_admin_sees_everyones(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let admin = app.client_for("root", true, false).await;
    let (mut bobs, _) = open_now(&app, &bob, "").await;
    let (mut admins, _) = open_now(&app, &admin, "").await;

    let alices = submit_as(&app, &app.client, sample("alices", body!({}))).await;
    cancel(&app, &alices).await;
    let bobs_own = submit_as(&app, &bob, sample("bobs", body!({}))).await;

    let seen_by_bob = bobs.states(1).await;
    assert_eq!(
        seen_by_bob[0]["id"],
        bobs_own.as_str(),
        "alice's changes came first"
    );
    let seen_by_admin = admins.states(3).await;
    assert_eq!(
        changes(&seen_by_admin),
        [
            (alices.clone(), Value::Null, body!("queued")),
            (alices, body!("queued"), body!("cancelled")),
            (bobs_own, Value::Null, body!("queued")),
        ]
    );
}
on_both_databases!(a_user_sees_only_their_own_changes_and_an_admin_sees_everyones);

async fn filters_by_label_state_and_id_choose_the_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut by_label, _) = open_now(&app, &app.client, "?label=campaign=a").await;
    let (mut by_state, _) = open_now(&app, &app.client, "?state=cancelled,failed").await;
    let x = submit_as(&app, &app.client, sample("x", body!({"campaign": "a"}))).await;
    let y = submit_as(&app, &app.client, sample("y", body!({"campaign": "b"}))).await;
    let (mut by_id, _) = open_now(&app, &app.client, &format!("?id={y}")).await;

    cancel(&app, &x).await;
    cancel(&app, &y).await;
    let z = submit_as(&app, &app.client, sample("z", body!({"campaign": "a"}))).await;

    assert_eq!(
        changes(&by_label.states(3).await),
        [
            (x.clone(), Value::Null, body!("queued")),
            (x.clone(), body!("queued"), body!("cancelled")),
            (z, Value::Null, body!("queued")),
        ]
    );
    assert_eq!(
        changes(&by_state.states(2).await),
        [
            (x, body!("queued"), body!("cancelled")),
            (y.clone(), body!("queued"), body!("cancelled")),
        ]
    );
    assert_eq!(
        changes(&by_id.states(1).await),
        [(y, body!("queued"), body!("cancelled"))]
    );
}
on_both_databases!(filters_by_label_state_and_id_choose_the_changes);

async fn a_stream_resumes_after_its_last_event_across_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut stream = open(&app, "?after=0").await;
    let first = submit_as(&app, &app.client, sample("first", body!({}))).await;
    let second = submit_as(&app, &app.client, sample("second", body!({}))).await;
    cancel(&app, &first).await;
    let seen = stream.states(3).await;
    drop(stream);
    let after_first = seen[0]["revision"].as_i64().expect("revision");

    let database = app.stop();
    let app = TestApp::builder()
        .with_database(database)
        .with_cluster(Cluster::unconfigured(
            "no cluster in this test".into(),
            "default".into(),
        ))
        .spawn()
        .await;
    let third = submit_as(&app, &app.client, sample("third", body!({}))).await;
    let mut by_header = EventStream::open(
        &app.client,
        &app.url("/v1/events?after=0"),
        Some(after_first),
    )
    .await;
    let mut by_query = open(&app, &format!("?after={after_first}")).await;

    let expected = [
        (second.clone(), Value::Null, body!("queued")),
        (first.clone(), body!("queued"), body!("cancelled")),
        (third.clone(), Value::Null, body!("queued")),
    ];
    let resumed = by_header.states(3).await;
    assert_eq!(changes(&resumed), expected, "Last-Event-ID wins over after");
    assert_eq!(
        resumed[..2],
        seen[1..],
        "the same events as before the restart"
    );
    assert_eq!(changes(&by_query.states(3).await), expected);
    cancel(&app, &third).await;
    assert_eq!(
        changes(&by_header.states(1).await),
        [(third, body!("queued"), body!("cancelled"))]
    );
}
on_both_databases!(a_stream_resumes_after_its_last_event_across_a_restart);

async fn bad_filters_and_positions_are_named(backend: Backend) {
    let app = spawn_app(backend).await;
    submit_as(&app, &app.client, sample("one", body!({}))).await;
    let cases = [
        ("?state=done", "state"),
        ("?label=novalue", "label"),
        ("?label=bad%20key=x", "label"),
        ("?id=nope", "id"),
        ("?after=-1", "after"),
        ("?after=abc", "after"),
        ("?after=1&after=2", "after"),
        ("?colour=red", "colour"),
    ];
    for (query, field) in cases {
        let response = app.get(&format!("/v1/events{query}")).await;
        let problem = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(fields(&problem), [field], "{query}");
    }
    let response = app
        .client
        .get(app.url("/v1/events"))
        .header("last-event-id", "seven")
        .send()
        .await
        .expect("request");
    let bad = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(fields(&bad), ["Last-Event-ID"]);

    let future = problem(
        app.get("/v1/events?after=99").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&future), ["after"], "past the newest revision");
}
on_both_databases!(bad_filters_and_positions_are_named);

async fn resuming_from_pruned_events_is_refused_with_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let old = submit_as(&app, &app.client, sample("old", body!({}))).await;
    cancel(&app, &old).await;

    let pruned = store
        .prune_events(Timestamp::now() + jiff::SignedDuration::from_secs(1))
        .await
        .expect("prune");
    let newer = submit_as(&app, &app.client, sample("newer", body!({}))).await;

    assert_eq!(pruned, 2);
    let gone = problem(app.get("/v1/events?after=1").await, StatusCode::GONE).await;
    assert!(
        gone["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pruned")),
        "{gone}"
    );
    let mut from_pruned = open(&app, "?after=2").await;
    assert_eq!(
        changes(&from_pruned.states(1).await),
        [(newer, Value::Null, body!("queued"))],
        "the newest pruned revision is still a place to resume from"
    );
}
on_both_databases!(resuming_from_pruned_events_is_refused_with_410);

async fn a_quiet_stream_sends_keep_alives_and_counts_as_a_follow(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let app = TestApp::builder()
        .with_database(database)
        .with_cluster(Cluster::unconfigured(
            "no cluster in this test".into(),
            "default".into(),
        ))
        .with_settings(|settings| {
            settings.event_streams = EventStreams {
                poll: Duration::from_secs(1),
                keep_alive: Duration::from_millis(300),
                ..EventStreams::default()
            };
            settings.follows_per_user = 1;
            settings.request_timeout = Duration::from_secs(1);
        })
        .spawn()
        .await;
    let opened = Instant::now();
    let (mut stream, _) = open_now(&app, &app.client, "").await;

    let frame = stream
        .frame_within(Duration::from_secs(5))
        .await
        .expect("a keep-alive");
    let second = app.get("/v1/events").await;

    assert_eq!(frame.comment.as_deref(), Some("keep-alive"), "{frame:?}");
    problem(second, StatusCode::TOO_MANY_REQUESTS).await;
    while opened.elapsed() < Duration::from_millis(1500) {
        let frame = stream.frame_within(Duration::from_secs(5)).await;
        assert!(
            frame.is_some_and(|frame| frame.comment.is_some()),
            "the stream keeps sending past the request time limit of 1 s"
        );
    }
    drop(stream);
    eventually("a closed stream to free its slot", PATIENCE, || async {
        (app.get("/v1/events").await.status() == StatusCode::OK).then_some(())
    })
    .await;
}
on_both_databases!(a_quiet_stream_sends_keep_alives_and_counts_as_a_follow);

/// A client that stops reading holds up nobody: with one stream open on a connection that is
/// never read (a receive window of 1 KiB), 30,000 submissions are answered and every one of
/// their events reaches a stream that reads, in order, while the stalled one stays open. Their
/// events (about 6.6 MB) are more than the kernel buffers for the stalled connection (its
/// window, and at most 4 MiB on the service's side), so the service has had to hold back.
async fn a_client_that_stops_reading_holds_up_nobody(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app(backend).await;
    let address: std::net::SocketAddr = app
        .address
        .trim_start_matches("http://")
        .parse()
        .expect("the service's address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(1024).expect("a small window");
    let mut stalled = socket.connect(address).await.expect("connect");
    stalled
        .write_all(
            format!(
                "GET /v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
                app.token
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    let mut head = [0_u8; 12];
    stalled.read_exact(&mut head).await.expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    let (mut reader, present) = open_now(&app, &app.client, "").await;
    let mut answered = Vec::new();
    for batch in 0..3 {
        let submissions: Vec<Value> = (0..10_000)
            .map(|n| sample(&format!("b{batch}-{n}"), body!({"campaign": "big"})))
            .collect();
        let response = app
            .post_json(
                "/v1/submissions/batch",
                &body!({"submissions": submissions}),
            )
            .await;
        answered.push(response.status());
    }
    let mut revisions = Vec::with_capacity(30_000);
    while revisions.len() < 30_000 {
        let event = reader
            .state_within(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("{} of 30000 events came", revisions.len()));
        revisions.push(event["revision"].as_i64().expect("revision"));
    }

    assert_eq!(answered, [StatusCode::CREATED; 3]);
    assert!(revisions.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(revisions.first().is_some_and(|first| *first > present));
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    drop(stalled);
}
on_both_databases!(a_client_that_stops_reading_holds_up_nobody);
