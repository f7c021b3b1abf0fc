//! Many dashboards on one server: subscribers of `/v1/events` spread over users (each sees
//! only its own user's submissions), a burst of submissions, and how soon each state change
//! reaches every subscriber that may see it, with what it costs in memory.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::harness::{Backend, Database, Scale, Service, Table, expect_success, ms, token};

/// Streams each token user may keep open (the service's default cap on follows).
const STREAMS_PER_USER: usize = 20;

pub async fn run(scale: Scale) -> anyhow::Result<()> {
    let subscribers = scale.subscribers;
    let per_user = scale.events_per_user;
    let users = subscribers.div_ceil(STREAMS_PER_USER);
    let database = Database::create(Backend::Sqlite).await?;
    let mut tokens = Vec::new();
    for user in 0..users {
        tokens.push(token(&database, &format!("user-{user}"), false).await?);
    }
    let service = Service::start(&database, None).await?;
    let memory_before = service.memory()?;

    // Every subscriber connected (its stream's first line read) before the first submission.
    let (connected, mut ready) = mpsc::unbounded_channel();
    let mut readers = Vec::new();
    for subscriber in 0..subscribers {
        let user = subscriber / STREAMS_PER_USER;
        let response = expect_success(
            service
                .http
                .get(format!("{}/v1/events", service.url))
                .bearer_auth(&tokens[user]),
        )
        .await
        .with_context(|| format!("subscriber {subscriber}"))?;
        readers.push((
            user,
            tokio::spawn(arrivals(response, per_user, connected.clone())),
        ));
    }
    for _ in 0..subscribers {
        ready
            .recv()
            .await
            .context("a subscriber ended before it began")?;
    }
    let memory_connected = service.memory()?;

    // The burst: every user submits its payloads one after another, all users at once.
    let started = Instant::now();
    let submitted = futures::future::try_join_all((0..users).map(|user| {
        let (service, secret) = (&service, &tokens[user]);
        async move {
            let mut sent = Vec::new();
            for i in 0..per_user {
                let at = Instant::now();
                let answer: Value = expect_success(
                    service
                        .http
                        .post(format!("{}/v1/submissions", service.url))
                        .bearer_auth(secret)
                        .json(&json!({"image": "busybox", "command": format!("run {i}")})),
                )
                .await?
                .json()
                .await?;
                let id = answer["id"].as_str().context("no id")?.to_owned();
                sent.push((id, (user, at)));
            }
            anyhow::Ok(sent)
        }
    }))
    .await?;
    let submitted: HashMap<String, (usize, Instant)> = submitted.into_iter().flatten().collect();

    let mut delays = Vec::new();
    for (user, reader) in readers {
        let arrivals = reader.await??;
        if arrivals.len() != per_user {
            bail!("a subscriber got {} of {per_user} events", arrivals.len());
        }
        for (id, at) in arrivals {
            match submitted.get(&id) {
                Some((owner, sent)) if *owner == user => delays.push(at - *sent),
                _ => bail!("a subscriber of user {user} got an event of {id}, not its user's"),
            }
        }
    }
    let delivered_after = started.elapsed();
    let memory_after = service.memory()?;
    service.stop().await?;
    delays.sort();
    let quantile = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];

    let table = Table::start(
        &format!("Event stream: {subscribers} subscribers over {users} users (SQLite)"),
        &["figure", "value"],
    );
    for (figure, value) in [
        (
            "events delivered (each user's to its subscribers)",
            format!("{} ({} submissions)", delays.len(), submitted.len()),
        ),
        (
            "submitted to received, p50 / p99 / max",
            format!(
                "{} / {} / {}",
                ms(quantile(0.5)),
                ms(quantile(0.99)),
                ms(delays[delays.len() - 1])
            ),
        ),
        ("burst start to the last delivery", ms(delivered_after)),
        (
            "service RSS before / with every subscriber / after (peak)",
            format!(
                "{:.1} / {:.1} / {:.1} MiB ({:.1} MiB)",
                memory_before.now_mib,
                memory_connected.now_mib,
                memory_after.now_mib,
                memory_after.peak_mib
            ),
        ),
    ] {
        table.row(&[figure.into(), value]);
    }
    Ok(())
}

/// The submission ids of the first `expected` events this subscriber got, each with when it
/// arrived; says on `connected` when the stream's first line came.
async fn arrivals(
    response: reqwest::Response,
    expected: usize,
    connected: mpsc::UnboundedSender<()>,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut arrivals = Vec::new();
    let mut pending = Vec::new();
    let mut said = false;
    let mut body = response.bytes_stream();
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    while arrivals.len() < expected {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            () = &mut deadline => bail!("no event for 2 minutes"),
        };
        let Some(chunk) = chunk else {
            bail!("the stream ended");
        };
        pending.extend_from_slice(&chunk?);
        if !said {
            said = true;
            let _ = connected.send(());
        }
        while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let event: Value = serde_json::from_slice(data)?;
            let id = event["id"].as_str().context("an event without id")?;
            arrivals.push((id.to_owned(), Instant::now()));
        }
    }
    Ok(arrivals)
}
