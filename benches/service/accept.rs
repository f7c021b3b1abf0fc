//! The accept path: how fast submissions are taken and stored, one per request and 1,000 per
//! batch (20 in the smoke run), beside the same inserts sent straight to the database through the service's own
//! storage code (the floor the HTTP layer adds to).

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};
use submission_helper::domain::{
    Caller, Submission, SubmissionRequest, SubmissionSpec, SubmitDefaults,
};
use submission_helper::storage::Store;

use crate::harness::{
    Backend, Database, Memory, Sample, Scale, Service, Table, drive, expect_success, ms, rate,
    token,
};

const CLIENTS: [usize; 3] = [1, 16, 64];

/// One submission as a user sends it.
pub fn request_body(campaign: &str, n: usize) -> Value {
    json!({
        "name": format!("sample-{n}"),
        "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
        "command": format!("analyze config/master/analyze.cfg --sample {n}"),
        "env": {"NEVENTS": "1000"},
        "labels": {"campaign": campaign},
    })
}

/// The stored form of [`request_body`], built by the same parser the HTTP layer uses.
pub fn submission(campaign: &str, n: usize, user: &str) -> anyhow::Result<Submission> {
    let request: SubmissionRequest = serde_json::from_value(request_body(campaign, n))?;
    let spec = SubmissionSpec::parse(request, &SubmitDefaults::default())
        .map_err(|errors| anyhow::anyhow!("invalid benchmark submission: {errors:?}"))?;
    Ok(Submission::new(spec, "default", &Caller::user(user)))
}

/// Measures the accept path on `backend`; returns the service's memory at idle and after load.
pub async fn run(backend: Backend, scale: Scale) -> anyhow::Result<(Memory, Memory)> {
    let table = Table::start(
        &format!("Accept path, {backend}"),
        &[
            "clients",
            "per request",
            "service: submissions/s",
            "p50",
            "p99",
            "direct sqlx inserts: submissions/s",
            "p50",
            "p99",
            "service / direct",
        ],
    );
    let database = Database::create(backend).await?;
    let secret = Arc::new(token(&database, "bench", false).await?);
    let service = Service::start(&database, None).await?;
    let idle = service.memory()?;
    let direct_database = Database::create(backend).await?;
    let store = Store::connect(&direct_database.url).await?;

    for per_request in [1, scale.batch] {
        for clients in CLIENTS {
            let served = through_service(&service, &secret, clients, per_request, scale).await?;
            let direct = direct(&store, clients, per_request, scale).await?;
            table.row(&[
                clients.to_string(),
                per_request.to_string(),
                rate(served.per_second()),
                ms(served.p50()),
                ms(served.p99()),
                rate(direct.per_second()),
                ms(direct.p50()),
                ms(direct.p99()),
                format!("{:.2}", served.per_second() / direct.per_second()),
            ]);
        }
    }
    let loaded = service.memory()?;
    service.stop().await?;
    Ok((idle, loaded))
}

async fn through_service(
    service: &Service,
    secret: &Arc<String>,
    clients: usize,
    per_request: usize,
    scale: Scale,
) -> anyhow::Result<Sample> {
    let http = service.http.clone();
    let url = if per_request == 1 {
        format!("{}/v1/submissions", service.url)
    } else {
        format!("{}/v1/submissions/batch", service.url)
    };
    let secret = secret.clone();
    drive(clients, scale.accept_time, move |client, n| {
        let body = if per_request == 1 {
            request_body("accept", n)
        } else {
            let submissions: Vec<Value> = (0..per_request)
                .map(|i| request_body("accept", client * 1_000_000 + n * per_request + i))
                .collect();
            json!({ "submissions": submissions })
        };
        let request = http.post(&url).bearer_auth(secret.as_str()).json(&body);
        async move {
            expect_success(request).await.context("submit")?;
            Ok(per_request as u64)
        }
    })
    .await
}

async fn direct(
    store: &Store,
    clients: usize,
    per_request: usize,
    scale: Scale,
) -> anyhow::Result<Sample> {
    let store = store.clone();
    drive(clients, scale.accept_time, move |client, n| {
        let store = store.clone();
        async move {
            // Built inside the measured call, as the service parses inside its request.
            let submissions = (0..per_request)
                .map(|i| submission("accept", client * 1_000_000 + n * per_request + i, "bench"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            store.insert(submissions).await?;
            Ok(per_request as u64)
        }
    })
    .await
}
