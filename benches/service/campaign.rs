//! A campaign with wide fan-ins: 99 merges of 100 samples each and a final merge of the 99
//! (10,000 submissions in one batch request; 4 x 5 + 1 in the smoke run). How long the batch
//! takes to store, and what recording each end costs while the merges wait on them, beside the
//! same ends of as many submissions with no dependencies. A flat cost per end, from the first
//! to the last, is the proof that a fan-in of any width costs one update per edge. The same
//! ends again from 16 writers at once, as the controller's 16 reconciles write, show what the
//! group commit of progress shares among them.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use jiff::Timestamp;
use serde_json::{Value, json};
use submission_helper::domain::{Progress, State, SubmissionId};
use submission_helper::storage::Store;

use crate::harness::{Backend, Database, Scale, Service, Table, expect_success, ms, token};

/// What one layout of the campaign measured.
struct Measured {
    stored: Duration,
    first: Vec<Duration>,
    last: Vec<Duration>,
    releasing: Vec<Duration>,
    all_ended: Duration,
}

pub async fn run(backend: Backend, scale: Scale) -> anyhow::Result<()> {
    let (merges, width) = if scale.full { (99, 100) } else { (4, 5) };
    let campaign = measure(backend, merges, width, true, 1).await?;
    let reference = measure(backend, merges, width, false, 1).await?;
    let together = measure(backend, merges, width, false, WRITERS).await?;
    let total = merges * width + merges + 1;
    let table = Table::start(
        &format!(
            "A campaign of {total}: {merges} merges of {width} samples and a final merge ({backend})"
        ),
        &[
            "figure",
            "campaign (depends_on)",
            "the same without dependencies",
            "the same, 16 writers at once",
        ],
    );
    table.row(&[
        "stored, one batch request".into(),
        ms(campaign.stored),
        ms(reference.stored),
        ms(together.stored),
    ]);
    let tenth = (merges * width / 10).max(1);
    for (what, campaign, reference, together) in [
        (
            format!("an end recorded, p50 / p99, first {tenth} samples"),
            &campaign.first,
            &reference.first,
            &together.first,
        ),
        (
            format!("an end recorded, p50 / p99, last {tenth} samples"),
            &campaign.last,
            &reference.last,
            &together.last,
        ),
    ] {
        table.row(&[
            what,
            p50_p99(campaign),
            p50_p99(reference),
            p50_p99(together),
        ]);
    }
    table.row(&[
        "the end that queues a merge (its last sample's), p50 / p99".into(),
        p50_p99(&campaign.releasing),
        "-".into(),
        "-".into(),
    ]);
    let seconds = |measured: &Measured| format!("{:.2} s", measured.all_ended.as_secs_f64());
    table.row(&[
        format!("every end recorded, {total} in all"),
        seconds(&campaign),
        seconds(&reference),
        seconds(&together),
    ]);
    Ok(())
}

fn p50_p99(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |fraction: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * fraction).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    format!("{} / {}", ms(at(0.5)), ms(at(0.99)))
}

/// Writers recording ends at once in the last column: the controller's reconciles at once.
const WRITERS: usize = 16;

/// Stores the campaign (or the same submissions without dependencies), then records every end,
/// from `writers` writers at once (without dependencies only: their order does not matter).
async fn measure(
    backend: Backend,
    merges: usize,
    width: usize,
    with_dependencies: bool,
    writers: usize,
) -> anyhow::Result<Measured> {
    let database = Database::create(backend).await?;
    let secret = token(&database, "bench", false).await?;
    let service = Service::start(&database, None).await?;
    let request = |name: String, depends_on: Vec<String>| {
        let mut body = json!({"name": name, "image": "busybox", "command": "true"});
        if with_dependencies && !depends_on.is_empty() {
            body["depends_on"] = json!(depends_on);
        }
        body
    };
    let mut submissions: Vec<Value> = (0..merges * width)
        .map(|n| request(format!("s{n}"), Vec::new()))
        .collect();
    for merge in 0..merges {
        let inputs = (merge * width..(merge + 1) * width).map(|n| format!("s{n}"));
        submissions.push(request(format!("m{merge}"), inputs.collect()));
    }
    submissions.push(request(
        "final".into(),
        (0..merges).map(|merge| format!("m{merge}")).collect(),
    ));

    let started = Instant::now();
    let answer: Value = expect_success(
        service
            .http
            .post(format!("{}/v1/submissions/batch", service.url))
            .bearer_auth(&secret)
            .json(&json!({ "submissions": submissions })),
    )
    .await?
    .json()
    .await?;
    let stored = started.elapsed();
    let ids: Vec<SubmissionId> = answer["submissions"]
        .as_array()
        .context("stored submissions")?
        .iter()
        .map(|submission| {
            submission["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .context("an id")
        })
        .collect::<anyhow::Result<_>>()?;

    // The controller's part: each sample's Job succeeded.
    let store = Store::connect(&database.url).await?;
    let samples = merges * width;
    let mut ends = Vec::with_capacity(ids.len());
    let mut releasing = Vec::new();
    let all = Instant::now();
    if writers > 1 {
        if with_dependencies {
            bail!("a campaign's ends are recorded in order, by one writer");
        }
        let mut timed = futures::stream::iter(&ids)
            .map(|id| {
                let store = &store;
                async move {
                    let one = Instant::now();
                    succeed(store, *id).await.map(|()| one.elapsed())
                }
            })
            .buffered(writers);
        while let Some(took) = timed.next().await {
            ends.push(took?);
        }
    } else {
        for (n, id) in ids.iter().enumerate() {
            let one = Instant::now();
            succeed(&store, *id).await?;
            let took = one.elapsed();
            ends.push(took);
            if with_dependencies && n < samples && (n + 1) % width == 0 {
                releasing.push(took);
            }
        }
    }
    let all_ended = all.elapsed();
    if with_dependencies {
        // Every merge, then the final one, was released as its inputs ended.
        let last = ids.last().context("the final merge")?;
        let state = store
            .get(*last)
            .await?
            .map(|submission| submission.progress.state);
        if state != Some(State::Succeeded) {
            bail!("the final merge is {state:?} after every end, not succeeded");
        }
    }
    service.stop().await?;
    let tenth = (samples / 10).max(1);
    Ok(Measured {
        stored,
        first: ends[..tenth].to_vec(),
        last: ends[samples - tenth..samples].to_vec(),
        releasing,
        all_ended,
    })
}

/// Records a submission's success as the controller does, and checks it was taken (a merge
/// can only succeed once it was released to `queued`).
async fn succeed(store: &Store, id: SubmissionId) -> anyhow::Result<()> {
    let updated = store
        .update(id, |current| {
            (current.progress.state == State::Queued).then(|| Progress {
                state: State::Succeeded,
                finished_at: Some(Timestamp::now()),
                ..current.progress.clone()
            })
        })
        .await?
        .context("stored")?;
    if !updated.changed {
        bail!(
            "submission {id} was {} when its turn came, not queued",
            updated.submission.progress.state
        );
    }
    Ok(())
}
