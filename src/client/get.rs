//! `get submissions|jobs|pods [ID]`: kubectl's tables of the service's objects, their names, or
//! the API's JSON; `-w` keeps polling and prints a line for each object that changed.
//!
//! Jobs and pods come from `/v1/jobs` and `/v1/pods`, whose rows the server computes with
//! kubectl's printers (STATUS, COMPLETIONS, DURATION, READY, RESTARTS, AGE); submissions from
//! `/v1/submissions`, their ages computed here from `created_at`. A CLUSTER column comes first,
//! as kubectl's NAMESPACE does with `-A`, once the rows name a cluster other than `default`
//! ([`names_clusters`]): a server with one cluster prints what it always did.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::api::{Api, id_segment};
use super::args::{GetArgs, Kind, Output};
use super::error::ClientError;
use super::model::{self, Items, JobRow, Page, PodRow, Submission};
use super::outcome::Outcome;
use super::output::{Table, age, line, one_line, or_none};
use super::{terminal, wait};
use crate::domain::{DEFAULT_CLUSTER, SUBMISSION_ID_LABEL, SubmissionId};

/// The objects listed, each as a row of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The object's own columns; CLUSTER is put before them when `clusters` says so.
    pub header: Vec<&'static str>,
    pub rows: Vec<Row>,
    /// Whether the table shows each row's cluster ([`names_clusters`]).
    pub clusters: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What identifies the object across polls.
    pub key: String,
    /// `-o name`: `submission/ID`, `job.batch/NAME`, `pod/NAME`.
    pub name: String,
    /// The cluster it is in: none for a submission not placed yet, or from an older server.
    pub cluster: Option<String>,
    /// The object's own columns, without its cluster.
    pub cells: Vec<String>,
    /// What a change is seen in: every column but those that only count time.
    pub fingerprint: String,
    /// The object as the API sent it.
    pub json: Value,
}

impl Listing {
    fn new(header: Vec<&'static str>, rows: Vec<Row>) -> Self {
        let clusters = names_clusters(rows.iter().map(|row| row.cluster.as_deref()));
        Listing {
            header,
            rows,
            clusters,
        }
    }

    pub fn table(&self) -> Table {
        let header = self.clusters.then_some("CLUSTER").into_iter();
        Table {
            header: header
                .chain(self.header.iter().copied())
                .map(str::to_owned)
                .collect(),
            rows: self
                .rows
                .iter()
                .map(|row| row.cells(self.clusters))
                .collect(),
        }
    }
}

impl Row {
    /// Its cells as the table prints them: its cluster first when the table shows clusters.
    pub fn cells(&self, clusters: bool) -> Vec<String> {
        let cluster = clusters
            .then(|| or_none(self.cluster.as_deref()))
            .into_iter();
        cluster.chain(self.cells.iter().cloned()).collect()
    }
}

/// Whether rows in these clusters need a CLUSTER column: they are in several, or in one not
/// named `default`. Rows in none (unplaced submissions, an older server's rows) do not count,
/// so a one-cluster user's tables keep their columns.
pub fn names_clusters<'a>(clusters: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    let named: BTreeSet<&str> = clusters.into_iter().flatten().collect();
    named.len() > 1 || named.iter().any(|name| *name != DEFAULT_CLUSTER)
}

/// Submissions as rows: ID, NAME, STATE, AGE, MESSAGE (wide: the pod counts, the Job, the image).
pub fn submission_rows(
    items: &[Value],
    wide: bool,
    now: Timestamp,
) -> Result<Listing, ClientError> {
    let header = if wide {
        vec![
            "ID",
            "NAME",
            "STATE",
            "ACTIVE",
            "SUCCEEDED",
            "FAILED",
            "AGE",
            "JOB",
            "QUEUE",
            "IMAGE",
            "MESSAGE",
        ]
    } else {
        vec!["ID", "NAME", "STATE", "AGE", "MESSAGE"]
    };
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let submission: Submission = model::read(item)?;
        let name = or_none(submission.name.as_deref());
        let message = one_line(submission.message.as_deref());
        let age = age(submission.created_at, now);
        let cells = if wide {
            vec![
                submission.id.clone(),
                name,
                submission.state.clone(),
                submission.active.to_string(),
                submission.succeeded.to_string(),
                submission.failed.to_string(),
                age,
                submission.job_name.clone(),
                submission
                    .queue
                    .as_ref()
                    .map_or_else(|| "<none>".to_owned(), model::Queue::summary),
                submission.image.clone(),
                message.clone(),
            ]
        } else {
            vec![
                submission.id.clone(),
                name,
                submission.state.clone(),
                age,
                message.clone(),
            ]
        };
        let cluster = submission.cluster.clone().filter(|name| !name.is_empty());
        rows.push(Row {
            key: submission.id.clone(),
            name: format!("submission/{}", submission.id),
            fingerprint: format!(
                "{} {} {} {} {} {message}",
                submission.state,
                submission.active,
                submission.succeeded,
                submission.failed,
                or_none(cluster.as_deref())
            ),
            cluster,
            cells,
            json: item.clone(),
        });
    }
    Ok(Listing::new(header, rows))
}

/// Jobs as `kubectl get jobs` prints them (wide: the submission too).
pub fn job_rows(items: &[Value], wide: bool) -> Result<Listing, ClientError> {
    let mut header = vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"];
    if wide {
        header.push("SUBMISSION");
    }
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let job: JobRow = model::read(item)?;
        let mut cells = vec![
            job.name.clone(),
            job.status.clone(),
            job.completions.clone(),
            job.duration.clone(),
            job.age.clone(),
        ];
        if wide {
            cells.push(or_none(job.submission_id.as_deref()));
        }
        rows.push(Row {
            key: format!("{}/{}", job.cluster, job.name),
            name: format!("job.batch/{}", job.name),
            cluster: Some(job.cluster.clone()).filter(|name| !name.is_empty()),
            cells,
            fingerprint: format!(
                "{} {} {} {} {}",
                job.status, job.completions, job.active, job.succeeded, job.failed
            ),
            json: item.clone(),
        });
    }
    Ok(Listing::new(header, rows))
}

/// Pods as `kubectl get pods` prints them (wide: the submission too).
pub fn pod_rows(items: &[Value], wide: bool) -> Result<Listing, ClientError> {
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        header.push("SUBMISSION");
    }
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let pod: PodRow = model::read(item)?;
        let mut cells = vec![
            pod.name.clone(),
            pod.ready.clone(),
            pod.status.clone(),
            pod.restarts.to_string(),
            pod.age.clone(),
        ];
        if wide {
            cells.push(or_none(pod.submission_id.as_deref()));
        }
        rows.push(Row {
            key: format!("{}/{}", pod.cluster, pod.name),
            name: format!("pod/{}", pod.name),
            cluster: Some(pod.cluster.clone()).filter(|name| !name.is_empty()),
            cells,
            fingerprint: format!("{} {} {}", pod.ready, pod.status, pod.restarts),
            json: item.clone(),
        });
    }
    Ok(Listing::new(header, rows))
}

/// `-l K=V` as the API's `label` parameters (each `-l` may hold several, comma-separated).
pub fn label_pairs(selectors: &[String]) -> Result<Vec<String>, ClientError> {
    let mut labels = Vec::new();
    for part in selectors.iter().flat_map(|selector| selector.split(',')) {
        let part = part.trim();
        match part.split_once('=') {
            Some((key, value))
                if !key.is_empty() && !key.ends_with('!') && !value.starts_with('=') =>
            {
                labels.push(format!("{}={}", key.trim(), value.trim()));
            }
            _ => {
                return Err(ClientError::Usage(format!(
                    "submissions are selected by KEY=VALUE labels only, not {part:?}"
                )));
            }
        }
    }
    Ok(labels)
}

/// The `label_selector` of `/v1/jobs` and `/v1/pods`: the user's selectors (any syntax the API
/// server takes), and the submission's when an id is given.
pub fn label_selector(selectors: &[String], submission: Option<&str>) -> String {
    let mut parts: Vec<String> = selectors
        .iter()
        .map(|selector| selector.trim().to_owned())
        .filter(|selector| !selector.is_empty())
        .collect();
    if let Some(id) = submission {
        parts.push(format!("{SUBMISSION_ID_LABEL}={id}"));
    }
    parts.join(",")
}

/// The query of `/v1/jobs` and `/v1/pods`: the label selector, and `--cluster`'s one cluster.
pub fn cluster_query(args: &GetArgs, submission: Option<&str>) -> Vec<(&'static str, String)> {
    let selector = label_selector(&args.selector, submission);
    let mut query = Vec::new();
    if !selector.is_empty() {
        query.push(("label_selector", selector));
    }
    if let Some(cluster) = &args.cluster {
        query.push(("cluster", cluster.clone()));
    }
    query
}

/// A submission id, as opposed to the name of a Job or a pod.
fn as_submission_id(text: &str) -> Option<String> {
    let text = text.strip_prefix("submission/").unwrap_or(text);
    SubmissionId::from_str(text).ok().map(|id| id.to_string())
}

/// One poll: the rows, and the JSON `-o json` prints when an id named one object.
async fn fetch(api: &Api, args: &GetArgs) -> Result<(Listing, Option<Value>), ClientError> {
    let wide = args.output == Some(Output::Wide);
    match args.kind {
        Kind::Submissions => {
            if let Some(id) = &args.id {
                let item: Value = api
                    .get(&format!("v1/submissions/{}", id_segment(id)), &[])
                    .await?;
                let listing = submission_rows(std::slice::from_ref(&item), wide, Timestamp::now())?;
                return Ok((listing, Some(item)));
            }
            let items = list_submissions(api, args).await?;
            Ok((submission_rows(&items, wide, Timestamp::now())?, None))
        }
        Kind::Jobs | Kind::Pods => {
            let id = args.id.as_deref();
            let submission = id.and_then(as_submission_id);
            let query = cluster_query(args, submission.as_deref());
            let path = match args.kind {
                Kind::Jobs => "v1/jobs",
                _ => "v1/pods",
            };
            let mut items = api.get::<Items>(path, &query).await?.items;
            // An object's own name: that object (and for a Job's name, its pods).
            if let (Some(name), None) = (id, &submission) {
                items.retain(|item| {
                    let own = item["name"].as_str().unwrap_or_default();
                    own == name || own.starts_with(&format!("{name}-"))
                });
            }
            items.sort_by(|a, b| {
                let [a, b] = [a, b].map(|item| (item["cluster"].as_str(), item["name"].as_str()));
                a.cmp(&b)
            });
            let listing = match args.kind {
                Kind::Jobs => job_rows(&items, wide)?,
                _ => pod_rows(&items, wide)?,
            };
            let single = match (args.kind, id, items.as_slice()) {
                (Kind::Jobs, Some(_), [job]) => Some(job.clone()),
                _ => None,
            };
            Ok((listing, single))
        }
    }
}

async fn list_submissions(api: &Api, args: &GetArgs) -> Result<Vec<Value>, ClientError> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if !args.state.is_empty() {
        query.push(("state", args.state.join(",")));
    }
    for label in label_pairs(&args.selector)? {
        query.push(("label", label));
    }
    if let Some(cluster) = &args.cluster {
        query.push(("cluster", cluster.clone()));
    }
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let wanted = match args.limit {
            0 => 1000,
            limit => limit.saturating_sub(items.len()).min(1000),
        };
        let mut page_query = query.clone();
        page_query.push(("limit", wanted.to_string()));
        if let Some(cursor) = &cursor {
            page_query.push(("cursor", cursor.clone()));
        }
        let page: Page = api.get("v1/submissions", &page_query).await?;
        items.extend(page.items);
        let full = args.limit != 0 && items.len() >= args.limit;
        match page.next_cursor {
            Some(next) if !full => cursor = Some(next),
            Some(_) => {
                eprintln!(
                    "(the newest {} shown; --limit N for more, --limit 0 for all)",
                    items.len()
                );
                return Ok(items);
            }
            None => return Ok(items),
        }
    }
}

pub async fn run(api: &Api, args: &GetArgs) -> Result<Outcome, ClientError> {
    if !args.state.is_empty() && args.kind != Kind::Submissions {
        return Err(ClientError::Usage(
            "--state selects submissions; Jobs and pods have a STATUS column instead".into(),
        ));
    }
    let (listing, single) = fetch(api, args).await?;
    match args.output {
        Some(Output::Json) => {
            let value = match single {
                Some(object) => object,
                None => {
                    json!({"items": listing.rows.iter().map(|row| row.json.clone()).collect::<Vec<_>>()})
                }
            };
            terminal::print_line(&serde_json::to_string_pretty(&value).unwrap_or_default())?;
        }
        Some(Output::Name) => {
            for row in &listing.rows {
                terminal::print_line(&row.name)?;
            }
        }
        Some(Output::Wide) | None => {
            if listing.rows.is_empty() && !args.watch {
                eprintln!("No {} found.", noun(args.kind));
            } else {
                terminal::print(&listing.table().render())?;
            }
        }
    }
    if args.watch {
        watch(api, args, listing).await?;
    }
    Ok(Outcome::Success)
}

fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Submissions => "submissions",
        Kind::Jobs => "Jobs",
        Kind::Pods => "pods",
    }
}

/// Polls until interrupted, printing each object that is new or changed, in the first
/// listing's columns (CLUSTER or not) so every line stays under its header.
async fn watch(api: &Api, args: &GetArgs, first: Listing) -> Result<(), ClientError> {
    let mut widths = first.table().widths();
    let clusters = first.clusters;
    if first.rows.is_empty() && matches!(args.output, Some(Output::Wide) | None) {
        terminal::print(&first.table().render())?;
    }
    let mut seen: HashMap<String, String> = first
        .rows
        .into_iter()
        .map(|row| (row.key, row.fingerprint))
        .collect();
    let mut last_error: Option<String> = None;
    loop {
        tokio::time::sleep(wait::POLL_INTERVAL).await;
        let listing = match fetch(api, args).await {
            Ok((listing, _)) => listing,
            Err(error) => {
                // A passing outage does not end a watch; it is said once.
                let text = error.to_string();
                if last_error.as_ref() != Some(&text) {
                    eprintln!("error: {text} (still watching)");
                    last_error = Some(text);
                }
                continue;
            }
        };
        last_error = None;
        for row in listing.rows {
            if seen.get(&row.key) == Some(&row.fingerprint) {
                continue;
            }
            match args.output {
                Some(Output::Json) => terminal::print_line(&row.json.to_string())?,
                Some(Output::Name) => terminal::print_line(&row.name)?,
                Some(Output::Wide) | None => {
                    let cells = row.cells(clusters);
                    for (width, cell) in widths.iter_mut().zip(&cells) {
                        *width = (*width).max(cell.chars().count() + 3);
                    }
                    terminal::print(&line(&cells, &widths))?;
                }
            }
            seen.insert(row.key, row.fingerprint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::client::args::ClientCommand;
    use clap::Parser;

    fn get_args(argv: &[&str]) -> GetArgs {
        let mut full = vec!["submission-helper", "get"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Client(ClientCommand::Get(args)) => args,
            _ => panic!("expected get"),
        }
    }

    #[test]
    fn submissions_show_id_name_state_age_and_the_first_line_of_the_message() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let items = [
            json!({"id": "0193-a", "name": "ttbar", "state": "failed", "created_at": "2026-03-01T11:56:48Z",
                   "message": "BackoffLimitExceeded\nmore", "job_name": "sh-0193a", "unknown_field": 1}),
            json!({"id": "0193-b", "name": null, "state": "queued", "created_at": "2026-03-01T11:59:15Z"}),
        ];

        let listing = submission_rows(&items, false, now).expect("rows");

        assert_eq!(
            listing.table().render(),
            "\
ID       NAME     STATE    AGE     MESSAGE
0193-a   ttbar    failed   3m12s   BackoffLimitExceeded
0193-b   <none>   queued   45s
"
        );
        assert_eq!(listing.rows[0].name, "submission/0193-a");
    }

    #[test]
    fn wide_rows_say_where_each_submission_waits() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let items = [
            json!({"id": "0193-a", "state": "pending", "created_at": "2026-03-01T11:59:00Z",
                   "job_name": "sh-0193a", "image": "busybox",
                   "queue": {"name": "analysis", "priority_class": "high", "admitted": false,
                             "position": 2, "evictions": 1}}),
            json!({"id": "0193-b", "state": "running", "created_at": "2026-03-01T11:59:00Z",
                   "job_name": "sh-0193b", "image": "busybox"}),
        ];

        let listing = submission_rows(&items, true, now).expect("rows");

        let column = listing
            .header
            .iter()
            .position(|name| *name == "QUEUE")
            .expect("a QUEUE column");
        let queues: Vec<&str> = listing
            .rows
            .iter()
            .map(|row| row.cells[column].as_str())
            .collect();
        assert_eq!(
            queues,
            [
                "analysis (priority high), position 2, evicted once",
                "<none>"
            ]
        );
    }

    #[test]
    fn jobs_and_pods_show_kubectls_columns_from_the_servers_rows() {
        let jobs = [
            json!({"name": "sh-1", "status": "Complete", "completions": "1/1",
                           "duration": "5m3s", "age": "12d", "submission_id": "0193"}),
        ];
        let pods = [
            json!({"name": "sh-1-x7k2p", "ready": "0/1", "status": "Completed",
                           "restarts": 0, "age": "3d4h"}),
        ];

        assert_eq!(
            job_rows(&jobs, true).expect("rows").table().render(),
            "NAME   STATUS     COMPLETIONS   DURATION   AGE   SUBMISSION\nsh-1   Complete   1/1           5m3s       12d   0193\n"
        );
        assert_eq!(
            pod_rows(&pods, false).expect("rows").table().render(),
            "NAME         READY   STATUS      RESTARTS   AGE\nsh-1-x7k2p   0/1     Completed   0          3d4h\n"
        );
    }

    #[test]
    fn jobs_and_pods_in_several_clusters_say_which_cluster_first() {
        let jobs = [
            json!({"name": "sh-1", "cluster": "default", "status": "Complete",
                   "completions": "1/1", "duration": "5m3s", "age": "12d"}),
            json!({"name": "sh-2", "cluster": "onsite", "status": "Running",
                   "completions": "0/1", "duration": "40s", "age": "40s"}),
        ];
        let pods = [
            json!({"name": "sh-2-x7k2p", "cluster": "onsite", "ready": "1/1",
                   "status": "Running", "restarts": 0, "age": "38s"}),
        ];

        assert_eq!(
            job_rows(&jobs, false).expect("rows").table().render(),
            "\
CLUSTER   NAME   STATUS     COMPLETIONS   DURATION   AGE
default   sh-1   Complete   1/1           5m3s       12d
onsite    sh-2   Running    0/1           40s        40s
"
        );
        assert_eq!(
            pod_rows(&pods, false).expect("rows").table().render(),
            "\
CLUSTER   NAME         READY   STATUS    RESTARTS   AGE
onsite    sh-2-x7k2p   1/1     Running   0          38s
"
        );
    }

    #[test]
    fn one_cluster_named_default_or_none_named_keeps_kubectls_columns() {
        let jobs = [
            json!({"name": "sh-1", "cluster": "default", "status": "Complete",
                   "completions": "1/1", "duration": "5m3s", "age": "12d"}),
        ];
        let older_server = [
            json!({"name": "sh-1-x7k2p", "ready": "0/1", "status": "Completed",
                   "restarts": 0, "age": "3d4h"}),
        ];

        assert_eq!(
            job_rows(&jobs, false).expect("rows").table().header,
            ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        );
        assert_eq!(
            pod_rows(&older_server, false).expect("rows").table().header,
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        );
    }

    #[test]
    fn submissions_name_their_cluster_once_one_is_not_default() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let placed = [
            json!({"id": "0193-a", "name": "ttbar", "state": "running", "cluster": "onsite",
                   "created_at": "2026-03-01T11:59:00Z"}),
            json!({"id": "0193-b", "name": "zjets", "state": "queued", "cluster": null,
                   "created_at": "2026-03-01T11:59:15Z"}),
        ];
        let on_one_cluster = [
            json!({"id": "0193-c", "state": "running", "cluster": "default",
                   "created_at": "2026-03-01T11:59:00Z"}),
            json!({"id": "0193-d", "state": "queued", "created_at": "2026-03-01T11:59:15Z"}),
        ];

        let listing = submission_rows(&placed, false, now).expect("rows");
        let single = submission_rows(&on_one_cluster, false, now).expect("rows");

        assert_eq!(
            listing.table().render(),
            "\
CLUSTER   ID       NAME    STATE     AGE   MESSAGE
onsite    0193-a   ttbar   running   60s
<none>    0193-b   zjets   queued    45s
"
        );
        assert_eq!(
            single.table().header,
            ["ID", "NAME", "STATE", "AGE", "MESSAGE"]
        );
    }

    #[test]
    fn a_submission_placed_in_a_cluster_is_a_change_to_watch() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let queued = json!({"id": "a", "state": "queued", "cluster": null});
        let placed = json!({"id": "a", "state": "queued", "cluster": "onsite"});

        let fingerprint = |item: &Value| {
            submission_rows(std::slice::from_ref(item), false, now)
                .expect("rows")
                .rows[0]
                .fingerprint
                .clone()
        };

        assert_ne!(fingerprint(&queued), fingerprint(&placed));
    }

    #[test]
    fn cluster_asks_the_server_for_one_clusters_jobs_and_pods() {
        let onsite = get_args(&["pods", "--cluster", "onsite", "-l", "campaign=mc16e"]);
        let every = get_args(&["jobs"]);

        assert_eq!(
            cluster_query(&onsite, Some("0193")),
            [
                (
                    "label_selector",
                    format!("campaign=mc16e,{SUBMISSION_ID_LABEL}=0193")
                ),
                ("cluster", "onsite".to_owned()),
            ]
        );
        assert_eq!(cluster_query(&every, None), []);
    }

    #[test]
    fn a_change_is_seen_in_the_state_not_in_the_passing_of_time() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let later: Timestamp = "2026-03-01T12:05:00Z".parse().expect("time");
        let queued = json!({"id": "a", "state": "queued", "created_at": "2026-03-01T11:00:00Z"});
        let running = json!({"id": "a", "state": "running", "created_at": "2026-03-01T11:00:00Z"});

        let fingerprint = |item: &Value, at| {
            submission_rows(std::slice::from_ref(item), false, at)
                .expect("rows")
                .rows[0]
                .fingerprint
                .clone()
        };

        assert_eq!(fingerprint(&queued, now), fingerprint(&queued, later));
        assert_ne!(fingerprint(&queued, now), fingerprint(&running, now));
    }

    #[test]
    fn selectors_become_label_parameters_or_a_label_selector() {
        assert_eq!(
            label_pairs(&["campaign=mc16e,batch=b1".into(), "x=y".into()]).expect("pairs"),
            vec!["campaign=mc16e", "batch=b1", "x=y"]
        );
        assert!(label_pairs(&["campaign!=mc16e".into()]).is_err());
        assert!(label_pairs(&["campaign".into()]).is_err());
        assert_eq!(
            label_selector(&["campaign in (a,b)".into()], Some("0193")),
            format!("campaign in (a,b),{SUBMISSION_ID_LABEL}=0193")
        );
    }
}
