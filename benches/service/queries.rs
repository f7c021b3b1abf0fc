//! Queries at scale: a database holding `scale.rows` submissions of 100 users in 1,000
//! campaigns (a label each), read through the service as users and admins do; then a cancel of
//! a whole campaign, a `/metrics` scrape, and the plans the database chose.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use submission_helper::domain::{State, Submission};
use submission_helper::storage::{Filter, Page, Store};

use crate::accept::submission;
use crate::harness::{
    Backend, Database, Memory, Scale, Service, Table, drive, expect_success, ms, rate, token,
};

const USERS: usize = 100;
const CAMPAIGNS: usize = 1000;
const CLIENTS: usize = 16;
/// Rows per insert while loading, and inserts in flight.
const LOAD_CHUNK: usize = 5000;
const LOAD_IN_FLIGHT: usize = 4;

fn campaign(index: usize) -> String {
    format!("c{index:04}")
}

fn user(index: usize) -> String {
    format!("user-{index:02}")
}

/// What the load stored that the queries need: ids at regular intervals, oldest first.
struct Loaded {
    sample_ids: Vec<String>,
    /// Ids of user-50's submissions, oldest first (a cursor deep in one user's list).
    user_50_ids: Vec<String>,
}

/// The state row `i` of `rows` (0 the oldest) is in: the newest 0.5% still active, the rest
/// finished, mostly succeeded.
fn state_of(i: usize, rows: usize) -> State {
    if i >= rows - rows / 200 {
        [State::Queued, State::Pending, State::Running][i % 3]
    } else if i.is_multiple_of(10) {
        State::Failed
    } else if i % 50 == 1 {
        State::Cancelled
    } else {
        State::Succeeded
    }
}

/// Stores `rows` submissions (campaign `j` is a contiguous run of rows of user `j % 100`),
/// then `cancel_rows` queued ones of user-00 labelled `campaign=bulk`.
async fn load(store: &Store, scale: Scale) -> anyhow::Result<Loaded> {
    let rows = scale.rows;
    let per_campaign = rows.div_ceil(CAMPAIGNS);
    let template = submission("template", 0, "nobody")?;
    let mut sample_ids = Vec::new();
    let mut user_50_ids = Vec::new();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut chunk = Vec::with_capacity(LOAD_CHUNK);
    let total = rows + scale.cancel_rows;
    for i in 0..total {
        let (campaign_name, owner, state) = if i < rows {
            let index = i / per_campaign;
            (campaign(index), user(index % USERS), state_of(i, rows))
        } else {
            ("bulk".to_owned(), user(0), State::Queued)
        };
        // Ids are UUIDv7, made here in row order, so "newest" is the end of the load.
        let mut row = Submission::new(
            template.spec.clone(),
            "default",
            &submission_helper::domain::Caller::user(&owner),
        );
        row.spec.name = Some(format!("sample-{i}"));
        row.spec.labels = [("campaign".to_owned(), campaign_name)].into();
        row.progress.state = state;
        if i.is_multiple_of((rows / 1000).max(1)) {
            sample_ids.push(row.id.to_string());
        }
        if owner == "user-50" && i.is_multiple_of(97) {
            user_50_ids.push(row.id.to_string());
        }
        chunk.push(row);
        if chunk.len() == LOAD_CHUNK || i + 1 == total {
            let store = store.clone();
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(LOAD_CHUNK));
            in_flight.spawn(async move { store.insert(full).await.map(|_| ()) });
            while in_flight.len() >= LOAD_IN_FLIGHT {
                if let Some(done) = in_flight.join_next().await {
                    done??;
                }
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        done??;
    }
    Ok(Loaded {
        sample_ids,
        user_50_ids,
    })
}

/// One query measured: a name, who asks, and the path and query it sends.
struct Query {
    name: &'static str,
    admin: bool,
    /// The user whose token sends it when not an admin.
    user: usize,
    path: String,
    /// The same query as the storage layer sees it, for its plan.
    filter: Option<(Filter, Page)>,
}

fn filter(owner: Option<usize>, states: &[State], label: Option<&str>) -> Filter {
    Filter {
        owner: owner.map(user),
        states: states.to_vec(),
        labels: label
            .map(|value| vec![("campaign".to_owned(), value.to_owned())])
            .unwrap_or_default(),
        ..Filter::default()
    }
}

fn queries(loaded: &Loaded) -> anyhow::Result<Vec<Query>> {
    let page = Page {
        limit: 100,
        before: None,
    };
    let newest = campaign(CAMPAIGNS - 1);
    let oldest = campaign(0);
    let deep_user = loaded
        .user_50_ids
        .get(loaded.user_50_ids.len() / 2)
        .context("no rows of user-50")?
        .clone();
    let deep_admin = loaded
        .sample_ids
        .get(loaded.sample_ids.len() / 4)
        .context("no rows")?
        .clone();
    let cursor = |id: &str| -> anyhow::Result<Page> {
        Ok(Page {
            limit: 100,
            before: Some(id.parse()?),
        })
    };
    let list = "/v1/submissions?limit=100";
    Ok(vec![
        Query {
            name: "newest, a user's own",
            admin: false,
            user: 99,
            path: list.into(),
            filter: Some((filter(Some(99), &[], None), page)),
        },
        Query {
            name: "newest, an admin's all",
            admin: true,
            user: 0,
            path: list.into(),
            filter: Some((filter(None, &[], None), page)),
        },
        Query {
            name: "state=running, a user's",
            admin: false,
            user: 99,
            path: format!("{list}&state=running"),
            filter: Some((filter(Some(99), &[State::Running], None), page)),
        },
        Query {
            name: "state=failed, a user's",
            admin: false,
            user: 7,
            path: format!("{list}&state=failed"),
            filter: Some((filter(Some(7), &[State::Failed], None), page)),
        },
        Query {
            name: "state=running, admin",
            admin: true,
            user: 0,
            path: format!("{list}&state=running"),
            filter: Some((filter(None, &[State::Running], None), page)),
        },
        Query {
            name: "state=queued,pending,running, admin",
            admin: true,
            user: 0,
            path: format!("{list}&state=queued,pending,running"),
            filter: Some((
                filter(None, &[State::Queued, State::Pending, State::Running], None),
                page,
            )),
        },
        Query {
            name: "state=succeeded,failed, admin",
            admin: true,
            user: 0,
            path: format!("{list}&state=succeeded,failed"),
            filter: Some((filter(None, &[State::Succeeded, State::Failed], None), page)),
        },
        Query {
            name: "label of the newest campaign, its user",
            admin: false,
            user: 99,
            path: format!("{list}&label=campaign={newest}"),
            filter: Some((filter(Some(99), &[], Some(&newest)), page)),
        },
        Query {
            name: "label of the oldest campaign, its user",
            admin: false,
            user: 0,
            path: format!("{list}&label=campaign={oldest}"),
            filter: Some((filter(Some(0), &[], Some(&oldest)), page)),
        },
        Query {
            name: "label of the oldest campaign, admin",
            admin: true,
            user: 0,
            path: format!("{list}&label=campaign={oldest}"),
            filter: Some((filter(None, &[], Some(&oldest)), page)),
        },
        Query {
            name: "label and state=failed, oldest campaign",
            admin: false,
            user: 0,
            path: format!("{list}&label=campaign={oldest}&state=failed"),
            filter: Some((filter(Some(0), &[State::Failed], Some(&oldest)), page)),
        },
        Query {
            name: "label and state=running, newest campaign",
            admin: false,
            user: 99,
            path: format!("{list}&label=campaign={newest}&state=running"),
            filter: Some((filter(Some(99), &[State::Running], Some(&newest)), page)),
        },
        Query {
            name: "a user's page deep in their list (cursor)",
            admin: false,
            user: 50,
            path: format!("{list}&cursor={deep_user}"),
            filter: Some((filter(Some(50), &[], None), cursor(&deep_user)?)),
        },
        Query {
            name: "an admin's page 3/4 down the list (cursor)",
            admin: true,
            user: 0,
            path: format!("{list}&cursor={deep_admin}"),
            filter: Some((filter(None, &[], None), cursor(&deep_admin)?)),
        },
    ])
}

/// What the query section measured, for the summary.
pub struct Outcome {
    pub memory: Memory,
}

pub async fn run(backend: Backend, scale: Scale) -> anyhow::Result<Outcome> {
    let database = Database::create(backend).await?;
    let store = Store::connect(&database.url).await?;
    let started = Instant::now();
    let loaded = load(&store, scale).await?;
    let load_time = started.elapsed();
    let total = scale.rows + scale.cancel_rows;
    if backend == Backend::Postgres {
        // What autovacuum does on a server that has been up a while.
        sqlx::query("ANALYZE")
            .execute(&sqlx::PgPool::connect(&database.url).await?)
            .await?;
    }
    let admin = Arc::new(token(&database, "bench-admin", true).await?);
    let mut users = Vec::new();
    for index in 0..USERS {
        users.push(token(&database, &user(index), false).await?);
    }
    let users = Arc::new(users);
    // As the service that stored them would have left them: it saves its final states'
    // counts every 10 s (a loader writing straight to the database saves nothing).
    store
        .save_final_counts(&store.final_counts(None).await?)
        .await?;
    let service = Service::start(&database, None).await?;
    let first_scrape = {
        let started = Instant::now();
        expect_success(service.http.get(format!("{}/metrics", service.url))).await?;
        started.elapsed()
    };

    let table = Table::start(
        &format!(
            "Queries at {} submissions, {backend} ({} on disk; stored in {:.0} s, {})",
            total,
            mib(database.size().await?),
            load_time.as_secs_f64(),
            rate(total as f64 / load_time.as_secs_f64()),
        ),
        &[
            "query",
            "rows",
            "1 client: p50",
            "p99",
            "16 clients: p50",
            "p99",
            "requests/s",
        ],
    );

    // Get by id: a different stored submission each time, as the admin.
    {
        let http = service.http.clone();
        let base = service.url.clone();
        let ids = Arc::new(loaded.sample_ids.clone());
        let secret = admin.clone();
        let figures = latency_and_load(scale, move |client, n| {
            let id = &ids[(client * 7919 + n * 31) % ids.len()];
            http.get(format!("{base}/v1/submissions/{id}"))
                .bearer_auth(secret.as_str())
        })
        .await?;
        table.row(&[vec!["get by id".into(), "1".into()], figures].concat());
    }

    let queries = queries(&loaded)?;
    for query in &queries {
        let secret = if query.admin {
            admin.as_str().to_owned()
        } else {
            users[query.user].clone()
        };
        let url = format!("{}{}", service.url, query.path);
        let first: Value = expect_success(service.http.get(&url).bearer_auth(&secret))
            .await
            .with_context(|| query.name)?
            .json()
            .await?;
        let rows = first["items"].as_array().map_or(0, Vec::len);
        let http = service.http.clone();
        let figures =
            latency_and_load(scale, move |_, _| http.get(&url).bearer_auth(&secret)).await?;
        table.row(&[vec![query.name.into(), rows.to_string()], figures].concat());
    }

    // /metrics: counts every state of every row.
    {
        let http = service.http.clone();
        let url = format!("{}/metrics", service.url);
        let figures = latency_and_load(scale, move |_, _| http.get(&url)).await?;
        table.row(&[vec!["/metrics scrape".into(), "-".into()], figures].concat());
        let mut first = vec!["-".to_owned(); 7];
        first[0] = "/metrics, the first scrape after the start".into();
        first[2] = ms(first_scrape);
        table.row(&first);
    }

    // Cancel a whole campaign by its label, as its user.
    {
        let started = Instant::now();
        let answer: Value = expect_success(
            service
                .http
                .post(format!("{}/v1/submissions/cancel", service.url))
                .bearer_auth(&users[0])
                .json(&json!({"labels": {"campaign": "bulk"}})),
        )
        .await
        .context("cancel by label")?
        .json()
        .await?;
        let took = started.elapsed();
        let cancelled = answer["cancelled"].as_array().map_or(0, Vec::len);
        ensure!(
            cancelled == scale.cancel_rows,
            "the cancel by label cancelled {cancelled} of {}",
            scale.cancel_rows
        );
        table.row(&[
            "cancel by label (`campaign=bulk`)".into(),
            cancelled.to_string(),
            ms(took),
            "(one request)".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    let memory = service.memory()?;
    service.stop().await?;

    println!("\nPlans of the list queries ({backend}):\n");
    for query in &queries {
        if let Some((filter, page)) = &query.filter {
            let plan = store.list_plan(filter, *page).await?;
            println!("- {}:", query.name);
            for line in plan {
                println!("      {line}");
            }
        }
    }
    Ok(Outcome { memory })
}

/// A request measured alone (its latency), then from 16 clients at once (latency under load
/// and throughput): the cells of a row after its name.
async fn latency_and_load<F>(scale: Scale, request: F) -> anyhow::Result<Vec<String>>
where
    F: Fn(usize, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let mut cells = Vec::new();
    for clients in [1, CLIENTS] {
        let request = request.clone();
        let sample = drive(clients, scale.query_time, move |client, n| {
            let sent = expect_success(request(client, n));
            async move {
                sent.await?;
                Ok(1)
            }
        })
        .await?;
        cells.push(ms(sample.p50()));
        cells.push(ms(sample.p99()));
        if clients == CLIENTS {
            cells.push(rate(sample.requests_per_second()));
        }
    }
    Ok(cells)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}
