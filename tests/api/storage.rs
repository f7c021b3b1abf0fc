//! The store itself, where the HTTP API cannot reach: filters that combine every criterion (the
//! statements `QueryBuilder` assembles), and keeping SQLite's write-ahead log bounded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use submission_helper::domain::{
    Caller, Progress, State, Submission, SubmissionId, SubmissionRequest, SubmissionSpec,
    SubmitDefaults,
};
use submission_helper::storage::{Checkpoint, Filter, Next, Page, Store};

use crate::on_both_databases;
use crate::support::{
    Backend, TestDatabase, eventually, eventually_seen, json as json_body, report, spawn_app,
};

/// A valid submission of `owner`'s, not yet stored.
fn submission(owner: &str, name: &str, labels: &[(&str, &str)], command: &str) -> Submission {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), json!(value)))
        .collect();
    let request: SubmissionRequest = serde_json::from_value(json!({
        "name": name,
        "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
        "command": command,
        "labels": labels,
        "registry_secret": null,
        "volume_claim": null,
    }))
    .expect("request");
    let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid spec");
    Submission::new(spec, "default", &Caller::user(owner))
}

/// Every submission `filter` matches, newest first, read page by page.
async fn list_everything(store: &Store, filter: &Filter) -> Vec<Submission> {
    let mut all: Vec<Submission> = Vec::new();
    loop {
        let page = Page {
            limit: 1000,
            before: all.last().map(|last| last.id),
        };
        let items = store.list(filter, page).await.expect("list");
        let done = items.len() < 1000;
        all.extend(items);
        if done {
            return all;
        }
    }
}

fn ids(submissions: &[Submission]) -> Vec<SubmissionId> {
    submissions.iter().map(|submission| submission.id).collect()
}

async fn every_filter_criterion_narrows_listing_and_bulk_cancel_together(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("database");
    let wanted: &[(&str, &str)] = &[("campaign", "mc16e"), ("user", "alice")];
    let first = submission("alice", "x", wanted, "run 1");
    let other_label_value = submission(
        "alice",
        "x",
        &[("campaign", "mc16e"), ("user", "bob")],
        "run 2",
    );
    let other_name = submission("alice", "y", wanted, "run 3");
    let other_owner = submission("bob", "x", wanted, "run 4");
    let cancelled = submission("alice", "x", wanted, "run 5");
    let running = submission("alice", "x", wanted, "run 6");
    let not_asked_for = submission("alice", "x", wanted, "run 7");
    let all = [
        first.clone(),
        other_label_value.clone(),
        other_name.clone(),
        other_owner.clone(),
        cancelled.clone(),
        running.clone(),
        not_asked_for.clone(),
    ];
    store.insert(all.to_vec()).await.expect("insert");
    let only_cancelled = Filter {
        ids: vec![cancelled.id],
        ..Filter::default()
    };
    store
        .cancel_matching(&only_cancelled, "by hand")
        .await
        .expect("cancel one");
    store
        .update(running.id, |current| {
            Some(Progress {
                state: State::Running,
                active: 1,
                ..current.progress.clone()
            })
        })
        .await
        .expect("update")
        .expect("stored");
    let filter = Filter {
        owner: Some("alice".into()),
        ids: all[..6].iter().map(|submission| submission.id).collect(),
        states: vec![State::Queued, State::Running],
        name: Some("x".into()),
        labels: wanted
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        cluster: None,
        queue: None,
    };

    let listed = store
        .list(
            &filter,
            Page {
                limit: 10,
                before: None,
            },
        )
        .await
        .expect("list");
    let first_page = store
        .list(
            &filter,
            Page {
                limit: 1,
                before: None,
            },
        )
        .await
        .expect("list");
    let older = store
        .list(
            &filter,
            Page {
                limit: 10,
                before: Some(running.id),
            },
        )
        .await
        .expect("list");
    let stopped = store
        .cancel_matching(&filter, "cancelled by the test")
        .await
        .expect("bulk cancel")
        .matched;

    assert_eq!(ids(&listed), [running.id, first.id]);
    assert_eq!(ids(&first_page), [running.id]);
    assert_eq!(ids(&older), [first.id]);
    assert_eq!(ids(&stopped), [running.id, first.id]);
    assert!(
        stopped.iter().all(|submission| {
            submission.progress.state == State::Cancelled
                && submission.progress.message.as_deref() == Some("cancelled by the test")
                && submission.progress.finished_at.is_some()
        }),
        "{stopped:#?}"
    );
    let still_queued = Filter {
        states: vec![State::Queued],
        ..Filter::default()
    };
    assert_eq!(
        ids(&list_everything(&store, &still_queued).await),
        [
            not_asked_for.id,
            other_owner.id,
            other_name.id,
            other_label_value.id
        ]
    );
}
on_both_databases!(every_filter_criterion_narrows_listing_and_bulk_cancel_together);

/// Submissions with a kilobyte-long command each: a few thousand fill several MiB of log.
fn bulky_batch(count: usize) -> Vec<Submission> {
    let padding = "x".repeat(1024);
    (0..count)
        .map(|i| {
            submission(
                "alice",
                &format!("bulk-{i}"),
                &[("campaign", "wal"), ("index", &i.to_string())],
                &format!("echo {i} {padding}"),
            )
        })
        .collect()
}

/// The size of SQLite's write-ahead log beside `database` (0 if there is none).
fn wal_size(database: &Path) -> u64 {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(0, |metadata| metadata.len())
}

const MIB: f64 = 1024.0 * 1024.0;

async fn a_checkpoint_keeps_every_row_and_empties_the_sqlite_wal(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("database");
    let batch = bulky_batch(6000);
    store.insert(batch.clone()).await.expect("insert");
    let grown = database.sqlite_file().map(|file| wal_size(&file));
    if let Some(grown) = grown {
        assert!(
            grown > 4 * 1024 * 1024,
            "6000 rows should grow the log past 4 MiB, it has {grown} bytes"
        );
    }

    let outcome = store.checkpoint().await.expect("checkpoint");

    let everything = list_everything(&store, &Filter::default()).await;
    let mut expected = batch;
    expected.reverse();
    assert_eq!(everything, expected, "every row reads back as stored");
    match database.sqlite_file() {
        Some(file) => {
            let after = wal_size(&file);
            report(&format!(
                "sqlite WAL: {:.1} MiB after 6000 inserts, {after} bytes after the checkpoint \
                 (database {:.1} MiB)",
                grown.unwrap_or_default() as f64 / MIB,
                std::fs::metadata(&file).map_or(0, |metadata| metadata.len()) as f64 / MIB,
            ));
            assert_eq!(outcome, Checkpoint::Truncated);
            assert_eq!(after, 0, "the checkpoint empties the log");
        }
        None => assert_eq!(outcome, Checkpoint::NotNeeded),
    }
}
on_both_databases!(a_checkpoint_keeps_every_row_and_empties_the_sqlite_wal);

/// The event feed learns how far the events go from the commits themselves (with no stream
/// open it reads nothing at all): after each commit the newest revision it was told is the
/// newest one stored, whether the commit was a single submission's, a batch's or a cancel's.
async fn each_commit_tells_the_newest_revision_it_stored(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("database");
    let told = store.event_wakes();
    let newest = async || store.revisions().await.expect("revisions").latest;

    let one = store
        .insert(vec![submission("alice", "one", &[], "true")])
        .await
        .expect("insert");
    assert_eq!(*told.borrow(), newest().await);
    store.insert(bulky_batch(30)).await.expect("insert");
    assert_eq!(*told.borrow(), newest().await);
    let before = *told.borrow();
    let filter = Filter {
        ids: vec![one[0].id],
        ..Filter::default()
    };
    store
        .cancel_matching(&filter, "cancelled by its owner")
        .await
        .expect("cancel");
    assert!(*told.borrow() > before, "a cancel records its event");
    assert_eq!(*told.borrow(), newest().await);
}
on_both_databases!(each_commit_tells_the_newest_revision_it_stored);

/// Reads of one submission asked for at the same moment (the reconciles one burst of events
/// makes due) share a statement; each still gets its own row, none for an id never stored, and
/// an id asked for twice gets its row twice.
async fn reads_asked_for_together_each_get_their_own_row(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("database");
    let stored = store
        .insert(
            (0..40)
                .map(|n| submission("alice", &format!("read-{n}"), &[], "true"))
                .collect(),
        )
        .await
        .expect("insert");
    let never = submission("alice", "never-stored", &[], "true").id;
    let mut asked = ids(&stored);
    asked.extend([stored[7].id, never, stored[7].id]);

    let answers = futures::future::join_all(asked.iter().map(|id| store.get(*id))).await;

    for (id, answer) in asked.iter().zip(answers) {
        match answer.expect("read") {
            Some(read) => {
                let name = stored
                    .iter()
                    .find(|s| s.id == *id)
                    .and_then(|s| s.spec.name.clone());
                assert_eq!((read.id, read.spec.name), (*id, name));
            }
            None => assert_eq!(*id, never, "a stored submission was not found"),
        }
    }
}
on_both_databases!(reads_asked_for_together_each_get_their_own_row);

/// A row that cannot be read (here its time spoiled by hand) fails its own read only, not the
/// reads that happened to share its statement.
#[tokio::test]
async fn a_row_that_cannot_be_read_fails_only_its_own_read() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = Store::connect(&database.url).await.expect("database");
    let stored = store
        .insert(
            (0..20)
                .map(|n| submission("alice", &format!("read-{n}"), &[], "true"))
                .collect(),
        )
        .await
        .expect("insert");
    let spoiled = stored[3].id;
    let beside = sqlx::SqlitePool::connect(&database.url)
        .await
        .expect("connect");
    sqlx::query("UPDATE submissions SET created_at = 'not a time' WHERE id = ?")
        .bind(spoiled.to_string())
        .execute(&beside)
        .await
        .expect("spoil a row");

    let answers = futures::future::join_all(stored.iter().map(|s| store.get(s.id))).await;

    for (submission, answer) in stored.iter().zip(answers) {
        match answer {
            Ok(read) => assert_eq!(read.map(|read| read.id), Some(submission.id)),
            Err(error) => assert_eq!(submission.id, spoiled, "{error}"),
        }
    }
    assert!(store.get(spoiled).await.is_err(), "the spoiled row fails");
}

/// A reader that stays open (here another process's, such as an `sqlite3` shell) keeps a
/// checkpoint from emptying the log, and the checkpoint must not hold every writer up meanwhile:
/// it holds SQLite's write lock while it waits for readers, so waiting as long as a write may
/// would fail other processes' writes (the `token` command's) with "database is locked" and the
/// service's own transactions at once. Writes from this process and another go on throughout.
#[tokio::test]
async fn a_checkpoint_waiting_for_a_reader_does_not_hold_writers_up() {
    use sqlx::Connection as _;

    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = Store::connect(&database.url).await.expect("database");
    let other_process = Store::connect(&database.url).await.expect("database");
    store.insert(bulky_batch(200)).await.expect("insert");
    let mut reader = sqlx::SqliteConnection::connect(&database.url)
        .await
        .expect("a reader's connection");
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM submissions;")
        .execute(&mut reader)
        .await
        .expect("a read left open");

    let checkpoint = tokio::spawn({
        let store = store.clone();
        async move { store.checkpoint().await }
    });
    let mut writes = 0;
    while writes < 3 || !checkpoint.is_finished() {
        let write = async {
            store
                .insert(vec![submission("alice", "beside", &[], "true")])
                .await
                .expect("this process's write");
            other_process
                .create_token("carol", false, false)
                .await
                .expect("another process's write");
        };
        tokio::time::timeout(Duration::from_secs(5), write)
            .await
            .expect("writes go on while a checkpoint waits for a reader");
        writes += 1;
    }
    let outcome = checkpoint.await.expect("joined").expect("checkpoint");
    assert_eq!(outcome, Checkpoint::Busy, "the open read kept the log");

    sqlx::raw_sql("COMMIT")
        .execute(&mut reader)
        .await
        .expect("end the read");
    assert_eq!(
        store.checkpoint().await.expect("checkpoint"),
        Checkpoint::Truncated,
        "once the reader is gone the log is emptied"
    );
}

/// Another process that holds SQLite's write lock for a moment (the `token` command, an
/// `sqlite3` shell) makes the service's writes wait, not fail: a rerun reads what it reruns
/// before it writes, and a transaction that has read cannot wait for the lock (SQLite calls no
/// busy handler then, as what it read may be stale), so it failed at once with "database is
/// locked" unless it took the lock when it began.
#[tokio::test]
async fn a_write_that_reads_first_waits_for_another_processs_write_lock() {
    use sqlx::Connection as _;
    use submission_helper::storage::RerunStored;

    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = Store::connect(&database.url).await.expect("database");
    let stored = store
        .insert(vec![submission("alice", "again", &[], "false")])
        .await
        .expect("insert");
    let filter = Filter {
        ids: vec![stored[0].id],
        ..Filter::default()
    };
    store
        .cancel_matching(&filter, "cancelled by its owner")
        .await
        .expect("cancel");
    let mut other_process = sqlx::SqliteConnection::connect(&database.url)
        .await
        .expect("another process's connection");
    sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE submissions SET name = name;")
        .execute(&mut other_process)
        .await
        .expect("another process's write, not yet committed");

    let rerun = tokio::spawn({
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            store
                .rerun_matching(&filter, |s| Ok(s.spec.clone()), None)
                .await
        }
    });
    // The other process's write takes a moment; the rerun starts meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut other_process)
        .await
        .expect("the other process commits");

    let rerun = tokio::time::timeout(Duration::from_secs(10), rerun)
        .await
        .expect("the rerun ends once the lock is free")
        .expect("joined")
        .expect("the rerun waits for the lock instead of failing");
    let RerunStored::New(reran) = rerun else {
        panic!("a rerun without a key is new");
    };
    assert_eq!(ids(&reran.matched), vec![stored[0].id]);
    let now = store.get(stored[0].id).await.expect("get").expect("stored");
    assert_eq!(now.progress.state, State::Queued);
}

/// The service checkpoints on its own soon after a large batch, well before its periodic
/// checkpoint (every 45 s) would: the log of a 6000-submission batch is emptied within 20 s.
#[tokio::test]
async fn the_service_empties_the_sqlite_wal_soon_after_a_large_batch() {
    let app = spawn_app(Backend::Sqlite).await;
    let file = app.database.sqlite_file().expect("an SQLite database");
    let padding = "x".repeat(1024);
    let submissions: Vec<Value> = (0..6000)
        .map(|i| {
            json!({
                "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
                "command": format!("echo {i} {padding}"),
                "labels": {"campaign": "wal"},
            })
        })
        .collect();
    let sent = Instant::now();
    let created = json_body(
        app.post_json(
            "/v1/submissions/batch",
            &json!({ "submissions": submissions }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let stored_in = sent.elapsed();
    let just_after = wal_size(&file);

    eventually_seen("the log to be emptied", Duration::from_secs(20), || async {
        match wal_size(&file) {
            0 => Ok(()),
            size => Err(format!(
                "the log still holds {size} bytes (it held {just_after} bytes just after \
                     the batch)"
            )),
        }
    })
    .await;

    report(&format!(
        "sqlite WAL: {:.1} MiB when the 6000-submission batch was answered ({:.1} s), 0 bytes \
         {:.1} s later",
        just_after as f64 / MIB,
        stored_in.as_secs_f64(),
        (sent.elapsed() - stored_in).as_secs_f64(),
    ));
    let mut listed: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = json_body(
            app.get(&format!("/v1/submissions?limit=1000&cursor={cursor}"))
                .await,
            StatusCode::OK,
        )
        .await;
        listed.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut expected = created["submissions"].as_array().expect("created").clone();
    expected.reverse();
    assert_eq!(expected.len(), 6000);
    assert_eq!(
        listed, expected,
        "every submission reads back as it was created"
    );
}

/// A submission that succeeds while a bulk cancel is being written stays succeeded: the state
/// check holds at the moment each row is written, not only when the matching rows were chosen.
/// On Postgres the success is held uncommitted until the cancel is seen waiting for that row;
/// on SQLite (one writer at a time) the cancel waits for the success's write lock.
async fn a_success_committed_during_a_bulk_cancel_is_not_overwritten(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("store");
    let racing = submission("alice", "racing", &[("campaign", "race")], "true");
    let other = submission("alice", "other", &[("campaign", "race")], "true");
    store
        .insert(vec![racing.clone(), other.clone()])
        .await
        .expect("insert");
    let filter = Filter {
        owner: Some("alice".into()),
        labels: vec![("campaign".into(), "race".into())],
        ..Filter::default()
    };
    let succeed = "UPDATE submissions SET state = 'succeeded', version = version + 1 WHERE id = $1";
    let racing_id = racing.id.to_string();

    let cancelled = match backend {
        Backend::Postgres => {
            use sqlx::{Connection, Executor};
            let mut success = sqlx::PgConnection::connect(&database.url)
                .await
                .expect("connect");
            let watcher = sqlx::PgPool::connect(&database.url).await.expect("connect");
            success.execute("BEGIN").await.expect("begin");
            sqlx::query(succeed)
                .bind(&racing_id)
                .execute(&mut success)
                .await
                .expect("succeed");
            let cancel = tokio::spawn({
                let (store, filter) = (store.clone(), filter.clone());
                async move { store.cancel_matching(&filter, "cancelled").await }
            });
            eventually(
                "the bulk cancel to wait for the row",
                Duration::from_secs(30),
                || async {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                         AND query LIKE 'UPDATE submissions SET state%'",
                    )
                    .fetch_one(&watcher)
                    .await
                    .expect("pg_stat_activity");
                    (waiting > 0).then_some(())
                },
            )
            .await;
            success.execute("COMMIT").await.expect("commit");
            cancel.await.expect("join").expect("cancel").matched
        }
        Backend::Sqlite => {
            use sqlx::{Connection, Executor};
            let mut success = sqlx::SqliteConnection::connect(&database.url)
                .await
                .expect("connect");
            success.execute("BEGIN IMMEDIATE").await.expect("begin");
            sqlx::query(succeed)
                .bind(&racing_id)
                .execute(&mut success)
                .await
                .expect("succeed");
            let cancel = tokio::spawn({
                let (store, filter) = (store.clone(), filter.clone());
                async move { store.cancel_matching(&filter, "cancelled").await }
            });
            success.execute("COMMIT").await.expect("commit");
            cancel.await.expect("join").expect("cancel").matched
        }
    };

    assert_eq!(
        ids(&cancelled),
        vec![other.id],
        "only the still active one is cancelled"
    );
    let stored = store.get(racing.id).await.expect("get").expect("stored");
    assert_eq!(stored.progress.state, State::Succeeded);
}
on_both_databases!(a_success_committed_during_a_bulk_cancel_is_not_overwritten);

/// A list over several states is one walk per state merged newest first, so it must page
/// exactly like one walk: every row of those states once, in order, and nothing else.
async fn a_list_over_several_states_pages_through_them_newest_first(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("store");
    let states = [
        State::Succeeded,
        State::Failed,
        State::Queued,
        State::Cancelled,
    ];
    let stored: Vec<Submission> = (0..40)
        .map(|n| {
            let owner = if n % 3 == 0 { "bob" } else { "alice" };
            let mut row = submission(owner, &format!("n{n}"), &[], "true");
            row.progress.state = states[n % states.len()];
            row
        })
        .collect();
    store.insert(stored.clone()).await.expect("insert");
    let filter = Filter {
        owner: Some("alice".into()),
        states: vec![State::Failed, State::Succeeded],
        ..Filter::default()
    };

    let mut listed = Vec::new();
    loop {
        let page = Page {
            limit: 4,
            before: listed.last().copied(),
        };
        let items = store.list(&filter, page).await.expect("list");
        listed.extend(ids(&items));
        if items.len() < 4 {
            break;
        }
    }

    let mut expected: Vec<SubmissionId> = stored
        .iter()
        .filter(|row| row.owner == "alice")
        .filter(|row| matches!(row.progress.state, State::Failed | State::Succeeded))
        .map(|row| row.id)
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, expected);
}
on_both_databases!(a_list_over_several_states_pages_through_them_newest_first);

/// Every list query the API sends walks an index in id order and stops after a page: no
/// scan of the table and no sort of its rows, whatever the table holds (BENCHMARKS.md measures
/// them at a million rows). SQLite's plans do not depend on statistics, so they are checked
/// here; Postgres chooses by its statistics and is measured by the benchmark.
#[tokio::test]
async fn every_list_query_walks_an_index_and_sorts_nothing() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = Store::connect(&database.url).await.expect("store");
    let cursor = Some(SubmissionId::new());
    let label = vec![("campaign".to_owned(), "mc16e".to_owned())];
    let shapes: Vec<(&str, Filter)> = vec![
        ("an admin's newest", Filter::default()),
        (
            "a user's newest",
            Filter {
                owner: Some("alice".into()),
                ..Filter::default()
            },
        ),
        (
            "a state",
            Filter {
                states: vec![State::Running],
                ..Filter::default()
            },
        ),
        (
            "a user's state",
            Filter {
                owner: Some("alice".into()),
                states: vec![State::Failed],
                ..Filter::default()
            },
        ),
        (
            "several states",
            Filter {
                states: vec![State::Succeeded, State::Failed],
                ..Filter::default()
            },
        ),
        (
            "a user's several states",
            Filter {
                owner: Some("alice".into()),
                states: State::ACTIVE.to_vec(),
                ..Filter::default()
            },
        ),
        (
            "a label",
            Filter {
                labels: label.clone(),
                ..Filter::default()
            },
        ),
        (
            "a user's label and state",
            Filter {
                owner: Some("alice".into()),
                states: vec![State::Running],
                labels: label.clone(),
                ..Filter::default()
            },
        ),
        (
            "a name",
            Filter {
                name: Some("ttbar".into()),
                ..Filter::default()
            },
        ),
    ];

    for (shape, filter) in shapes {
        for before in [None, cursor] {
            let plan = store
                .list_plan(&filter, Page { limit: 100, before })
                .await
                .expect("plan");
            let text = plan.join("\n");
            // Merging several states sorts each state's page (at most `limit` rows); a sort
            // of a table's rows is what must never happen.
            let sorts_a_table = plan.windows(2).any(|lines| {
                lines[1].contains("TEMP B-TREE") && !lines[0].starts_with("SCAN state_")
            }) || plan
                .first()
                .is_some_and(|line| line.contains("TEMP B-TREE"));
            assert!(!sorts_a_table, "{shape} sorts rows:\n{text}");
            for line in &plan {
                let reads_a_table =
                    line.contains(" s ") || line.ends_with(" s") || line.contains(" l ");
                let whole_table = line.starts_with("SCAN")
                    && !(before.is_none()
                        && filter.owner.is_none()
                        && filter.states.is_empty()
                        && filter.labels.is_empty()
                        && filter.name.is_none()
                        && line.starts_with("SCAN s USING INDEX sqlite_autoindex_submissions_1"));
                assert!(
                    !(reads_a_table && whole_table),
                    "{shape} scans a table:\n{text}"
                );
            }
        }
    }
}

/// Upgrading rebuilds the submissions table (its state check gained `waiting`): a database
/// written by the previous release keeps every submission, label and archived log.
async fn a_database_of_the_previous_release_keeps_everything_when_upgraded(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let previous = tempfile::tempdir().expect("temporary directory");
    for entry in std::fs::read_dir("migrations").expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name < "0007" {
            std::fs::copy(&path, previous.path().join(name)).expect("copy migration");
        }
    }
    sqlx::any::install_default_drivers();
    let url = if database.url.starts_with("sqlite:") {
        format!("{}?mode=rwc", database.url)
    } else {
        database.url.clone()
    };
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::migrate::Migrator::new(previous.path())
        .await
        .expect("previous migrations")
        .run(&pool)
        .await
        .expect("migrate to the previous release");
    let kept = submission(
        "alice",
        "kept",
        &[("campaign", "mc16e"), ("step", "merge")],
        "true",
    );
    let spec = serde_json::to_string(&kept.spec).expect("spec");
    sqlx::query(
        "INSERT INTO submissions (id, name, spec, namespace, job_name, state, message, \
         succeeded, created_at, finished_at, updated_at, version, owner, submitted_by, \
         dispatch_attempts) VALUES ($1, 'kept', $2, 'default', $3, 'succeeded', NULL, 1, $4, \
         $4, $4, 3, 'alice', 'alice', 0)",
    )
    .bind(kept.id.to_string())
    .bind(spec)
    .bind(kept.job_name.clone())
    .bind(kept.created_at.to_string())
    .execute(&pool)
    .await
    .expect("a submission of the previous release");
    for (key, value) in [("campaign", "mc16e"), ("step", "merge")] {
        sqlx::query(
            "INSERT INTO submission_labels (submission_id, key, value) VALUES ($1, $2, $3)",
        )
        .bind(kept.id.to_string())
        .bind(key)
        .bind(value)
        .execute(&pool)
        .await
        .expect("label");
    }
    sqlx::query(
        "INSERT INTO pod_logs (submission_id, pod_name, pod_created_at, content_base64, \
         truncated_bytes, archived_at) VALUES ($1, 'kept-pod', $2, 'aGVsbG8K', 0, $2)",
    )
    .bind(kept.id.to_string())
    .bind(kept.created_at.to_string())
    .execute(&pool)
    .await
    .expect("archived log");
    pool.close().await;

    let store = Store::connect(&database.url).await.expect("upgrade");

    let upgraded = store.get(kept.id).await.expect("get").expect("kept");
    assert_eq!(upgraded.progress.state, State::Succeeded);
    assert_eq!(upgraded.spec, kept.spec);
    let by_label = list_everything(
        &store,
        &Filter {
            labels: vec![("step".into(), "merge".into())],
            ..Filter::default()
        },
    )
    .await;
    assert_eq!(ids(&by_label), [kept.id]);
    let log = store
        .archived_log(kept.id, None, "")
        .await
        .expect("read log")
        .expect("kept log");
    assert_eq!(
        (log.pod_name.as_str(), log.content.as_slice()),
        ("kept-pod", &b"hello\n"[..])
    );
}
on_both_databases!(a_database_of_the_previous_release_keeps_everything_when_upgraded);

/// On Postgres, with a campaign's newest submissions still queued above the finished ones (as
/// in the benchmark's million rows), a list of one or several final states walks the state
/// index. Postgres's own choice for `state = $1 ORDER BY id` is the primary key walked
/// backwards and filtered, which reads every newer row of other states first.
#[tokio::test]
#[ignore = "needs Postgres: tests/run.sh starts one and sets SH_TEST_POSTGRES_URL"]
async fn postgres_lists_of_a_state_walk_the_state_index() {
    let database = TestDatabase::new(Backend::Postgres).await;
    let store = Store::connect(&database.url).await.expect("store");
    let pool = sqlx::PgPool::connect(&database.url)
        .await
        .expect("postgres");
    // 200,000 rows in id order (ids of UUID form, their first part the row's number): every tenth failed, the newest 3,000 queued, the rest
    // succeeded; then the statistics Postgres plans with.
    sqlx::raw_sql(
        "INSERT INTO submissions (id, spec, namespace, job_name, state, created_at, updated_at, owner)
         SELECT lpad(to_hex(n), 8, '0') || '-0000-7000-8000-000000000000', repeat('x', 600), 'default', 'job-' || n,
                CASE WHEN n > 197000 THEN 'queued' WHEN n % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'user-' || (n % 100)
         FROM generate_series(1, 200000) AS n;
         ANALYZE submissions;",
    )
    .execute(&pool)
    .await
    .expect("rows");
    let shapes = [
        vec![State::Failed],
        vec![State::Succeeded],
        vec![State::Succeeded, State::Failed],
    ];
    for states in shapes {
        for before in [None, Some("000186a0-0000-7000-8000-000000000000")] {
            let filter = Filter {
                states: states.clone(),
                ..Filter::default()
            };
            let page = Page {
                limit: 100,
                before: before.map(|id| id.parse().expect("cursor")),
            };
            let text = store
                .list_plan(&filter, page)
                .await
                .expect("plan")
                .join("\n");
            assert!(
                text.contains("submissions_by_state") && !text.contains("pkey"),
                "{states:?} (cursor {before:?}) does not walk the state index:\n{text}"
            );
        }
    }
}

/// The dispatcher records the Jobs it created many at a time: each submission still queued for
/// that Job turns `pending` with its event, and one cancelled, or cancelled and rerun (a new Job
/// name), since its Job was created is left as it is for the dispatcher to look at again.
async fn creations_recorded_together_move_only_what_still_waits_for_that_job(backend: Backend) {
    // Arrange: four queued submissions; one cancelled since, one cancelled and rerun since.
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("store");
    let created: Vec<Submission> = (0..4)
        .map(|n| submission("alice", &format!("job-{n}"), &[], "true"))
        .collect();
    store.insert(created.clone()).await.expect("insert");
    let by_ids = |ids: Vec<SubmissionId>| Filter {
        ids,
        ..Filter::default()
    };
    store
        .cancel_matching(&by_ids(vec![created[2].id, created[3].id]), "cancelled")
        .await
        .expect("cancel");
    store
        .rerun_matching(&by_ids(vec![created[3].id]), |s| Ok(s.spec.clone()), None)
        .await
        .expect("rerun");
    let before = store.revisions().await.expect("revisions").latest;

    // Act: the four Jobs as the dispatcher created them (the first run's names).
    let marked = store
        .record_created(&created.iter().collect::<Vec<_>>())
        .await
        .expect("record");

    // Assert
    let mut marked: Vec<SubmissionId> = marked.into_iter().collect();
    marked.sort();
    assert_eq!(marked, vec![created[0].id, created[1].id]);
    let states = |n: usize| {
        let store = store.clone();
        let id = created[n].id;
        async move {
            let stored = store.get(id).await.expect("get").expect("stored");
            (stored.progress.state, stored.progress.message)
        }
    };
    assert_eq!(states(0).await, (State::Pending, None));
    assert_eq!(states(1).await, (State::Pending, None));
    assert_eq!(states(2).await.0, State::Cancelled);
    assert_eq!(
        states(3).await.0,
        State::Queued,
        "the rerun waits for its own Job"
    );
    let events = store
        .events_after(before, &Default::default(), 100)
        .await
        .expect("events")
        .events;
    let mut moved: Vec<(SubmissionId, Option<State>, State)> = events
        .iter()
        .map(|event| (event.id, event.previous, event.state))
        .collect();
    moved.sort_by_key(|(id, _, _)| *id);
    assert_eq!(
        moved,
        vec![
            (created[0].id, Some(State::Queued), State::Pending),
            (created[1].id, Some(State::Queued), State::Pending),
        ]
    );
}
on_both_databases!(creations_recorded_together_move_only_what_still_waits_for_that_job);

/// A reconcile reads its submission once and writes what it decided on that read; a cancel
/// committed in between is not overwritten: the write finds another version, and the decision
/// is taken again on the row as it is now.
async fn a_write_decided_on_an_older_read_decides_again_on_the_row_as_it_is(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("store");
    let fresh = submission("alice", "fresh", &[], "true");
    let raced = submission("alice", "raced", &[], "true");
    store
        .insert(vec![fresh.clone(), raced.clone()])
        .await
        .expect("insert");
    // Advances to Running what is not final yet, noting each state the decision was taken on.
    let advance_to_running = async |read| {
        let mut decided_on = Vec::new();
        let updated = store
            .advance_read(read, |current: &Submission| {
                decided_on.push(current.progress.state);
                (!current.progress.state.is_final()).then(|| {
                    Next::Progress(Progress {
                        state: State::Running,
                        active: 1,
                        ..current.progress.clone()
                    })
                })
            })
            .await
            .expect("advance")
            .expect("stored");
        (updated.changed, decided_on)
    };

    let read = store.read(fresh.id).await.expect("read").expect("stored");
    let (changed, decided_on) = advance_to_running(read).await;
    assert!(changed);
    assert_eq!(decided_on, [State::Queued], "decided once, on the read");
    let stored = store.get(fresh.id).await.expect("get").expect("stored");
    assert_eq!(stored.progress.state, State::Running);

    let read = store.read(raced.id).await.expect("read").expect("stored");
    let only_raced = Filter {
        ids: vec![raced.id],
        ..Filter::default()
    };
    store
        .cancel_matching(&only_raced, "by hand")
        .await
        .expect("cancel");
    let (changed, decided_on) = advance_to_running(read).await;
    assert!(!changed);
    assert_eq!(
        decided_on,
        [State::Queued, State::Cancelled],
        "decided again on the cancelled row"
    );
    let stored = store.get(raced.id).await.expect("get").expect("stored");
    assert_eq!(stored.progress.state, State::Cancelled);
}
on_both_databases!(a_write_decided_on_an_older_read_decides_again_on_the_row_as_it_is);

/// Progress decided for many submissions at the same moment (a burst of Jobs changing) is
/// written for each, with one event each; and increments of one row racing one another, some
/// of them in the same shared transaction, each land once: a write whose row changed since it
/// was read is decided again, never written over the change.
async fn progress_decided_together_is_written_for_each_and_loses_no_race(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Store::connect(&database.url).await.expect("store");
    let many: Vec<Submission> = (0..40)
        .map(|n| submission("alice", &format!("sample-{n}"), &[], "true"))
        .collect();
    let raced = submission("alice", "raced", &[], "true");
    let mut all = many.clone();
    all.push(raced.clone());
    store.insert(all).await.expect("insert");
    let before = store.revisions().await.expect("revisions").latest;

    let running = |current: &Submission| {
        Some(Progress {
            state: State::Running,
            active: current.progress.active + 1,
            ..current.progress.clone()
        })
    };
    let writes = many
        .iter()
        .map(|submission| submission.id)
        .chain(std::iter::repeat_n(raced.id, 10))
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.update(id, running).await })
        })
        .collect::<Vec<_>>();
    for write in writes {
        let updated = write.await.expect("task").expect("update").expect("stored");
        assert!(updated.changed);
    }

    for submission in &many {
        let stored = store
            .get(submission.id)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(
            (stored.progress.state, stored.progress.active),
            (State::Running, 1)
        );
    }
    let stored = store.get(raced.id).await.expect("get").expect("stored");
    assert_eq!(
        stored.progress.active, 10,
        "every racing increment landed once"
    );
    let events = store
        .events_after(before, &Default::default(), 100)
        .await
        .expect("events")
        .events;
    let mut moved: Vec<SubmissionId> = events.iter().map(|event| event.id).collect();
    moved.sort();
    let mut expected: Vec<SubmissionId> = many.iter().map(|submission| submission.id).collect();
    expected.push(raced.id);
    expected.sort();
    assert_eq!(
        moved, expected,
        "one event per submission that started running"
    );
}
on_both_databases!(progress_decided_together_is_written_for_each_and_loses_no_race);
