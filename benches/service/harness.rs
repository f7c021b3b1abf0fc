//! What every section of the benchmark needs: the service as a separate process (so its memory
//! is its own), fresh databases, a load driver and the figures it prints.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use submission_helper::storage::Store;
use tokio::process::{Child, Command};

/// How big each section runs: the full benchmark (`cargo bench`) or the smoke run CI does
/// (`cargo test --bench service`), which only proves every path still works.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub full: bool,
    /// How long each accept-path figure is measured.
    pub accept_time: Duration,
    /// Submissions per batch request.
    pub batch: usize,
    /// How long each query figure is measured.
    pub query_time: Duration,
    /// Submissions stored before the queries are measured.
    pub rows: usize,
    /// Submissions cancelled by one label.
    pub cancel_rows: usize,
    /// Jobs created end to end (the smaller size).
    pub jobs: usize,
    /// Jobs created end to end, the larger size (none in the smoke run).
    pub jobs_large: usize,
    /// Runs of each end-to-end size on each database.
    pub runs: usize,
    /// Submissions of the section over two clusters.
    pub clusters_jobs: usize,
    /// Submissions admitted through Kueue.
    pub kueue_jobs: usize,
    /// Jobs live at once for the controller figures.
    pub live: usize,
    /// Submissions queued in the database when the service starts.
    pub backlog: usize,
    /// How long the API server's requests are counted with every Job live and nothing changing.
    pub rest: Duration,
    /// Followers of one pod's log.
    pub followers: usize,
    /// Running payloads of the campaign cancelled at once.
    pub cancel_live: usize,
    /// Subscribers of `/v1/events`, and the submissions each of their users makes.
    pub subscribers: usize,
    pub events_per_user: usize,
}

impl Scale {
    pub fn full() -> Self {
        Scale {
            full: true,
            accept_time: Duration::from_secs(3),
            batch: 1000,
            query_time: Duration::from_secs(2),
            rows: 1_000_000,
            cancel_rows: 10_000,
            jobs: 500,
            jobs_large: 5000,
            runs: 3,
            clusters_jobs: 1000,
            kueue_jobs: 1000,
            live: 5_000,
            backlog: 100_000,
            rest: Duration::from_secs(60),
            followers: 200,
            cancel_live: 10_000,
            subscribers: 500,
            events_per_user: 20,
        }
    }

    /// The sizes of the end-to-end section.
    pub fn e2e_sizes(&self) -> Vec<usize> {
        [self.jobs, self.jobs_large]
            .into_iter()
            .filter(|jobs| *jobs > 0)
            .collect()
    }

    pub fn smoke() -> Self {
        Scale {
            full: false,
            accept_time: Duration::from_millis(200),
            batch: 20,
            query_time: Duration::from_millis(100),
            rows: 5_000,
            cancel_rows: 200,
            jobs: 20,
            jobs_large: 0,
            runs: 1,
            clusters_jobs: 20,
            kueue_jobs: 20,
            live: 10,
            backlog: 1_000,
            rest: Duration::from_secs(2),
            followers: 5,
            cancel_live: 10,
            subscribers: 30,
            events_per_user: 3,
        }
    }
}

/// Which database a section runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "Postgres",
        })
    }
}

/// A fresh, empty database: an SQLite file in a temporary folder, or a new database on the
/// Postgres server named by `SH_TEST_POSTGRES_URL`.
pub struct Database {
    pub url: String,
    folder: Option<tempfile::TempDir>,
}

impl Database {
    pub async fn create(backend: Backend) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir()?;
                let url = format!("sqlite://{}", folder.path().join("bench.db").display());
                Ok(Database {
                    url,
                    folder: Some(folder),
                })
            }
            Backend::Postgres => {
                let server = postgres_server().context("no Postgres server")?;
                let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
                let admin = sqlx::PgPool::connect(&server)
                    .await
                    .with_context(|| format!("connect to SH_TEST_POSTGRES_URL ({server})"))?;
                // A database name cannot be bound; this one is ours (`bench_` and a UUID).
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                let (base, _) = server
                    .rsplit_once('/')
                    .context("SH_TEST_POSTGRES_URL names no database")?;
                Ok(Database {
                    url: format!("{base}/{name}"),
                    folder: None,
                })
            }
        }
    }

    /// Bytes the database takes on disk (SQLite: the file and its write-ahead log).
    pub async fn size(&self) -> anyhow::Result<u64> {
        match &self.folder {
            Some(folder) => {
                let mut bytes = 0;
                for name in ["bench.db", "bench.db-wal"] {
                    if let Ok(meta) = std::fs::metadata(folder.path().join(name)) {
                        bytes += meta.len();
                    }
                }
                Ok(bytes)
            }
            None => {
                let pool = sqlx::PgPool::connect(&self.url).await?;
                let (bytes,): (i64,) =
                    sqlx::query_as("SELECT pg_database_size(current_database())")
                        .fetch_one(&pool)
                        .await?;
                pool.close().await;
                Ok(u64::try_from(bytes)?)
            }
        }
    }
}

/// The Postgres server to use, if one is set up (`tests/postgres.sh`, `tests/bench.sh`).
pub fn postgres_server() -> Option<String> {
    std::env::var("SH_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// CPU time the Postgres server set up by `tests/postgres.sh` has used so far, in seconds: its
/// postmaster's, its live backends' and those of the backends that have ended (from /proc).
/// `None` without one, or where /proc does not say.
pub fn postgres_cpu_seconds() -> Option<f64> {
    let dir = std::env::var_os("SH_TEST_POSTGRES_DIR")?;
    let pid_file = std::fs::read_to_string(Path::new(&dir).join("data/postmaster.pid")).ok()?;
    let postmaster: u32 = pid_file.lines().next()?.trim().parse().ok()?;
    // utime, stime, cutime and cstime (14th-17th fields), and the parent (4th), in clock ticks.
    let stat = |pid: &str| -> Option<(u32, [f64; 4])> {
        let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = line.rsplit_once(')')?.1.split_whitespace().collect();
        let tick = |index: usize| fields.get(index)?.parse::<f64>().ok();
        Some((
            fields.get(1)?.parse().ok()?,
            [tick(11)?, tick(12)?, tick(13)?, tick(14)?],
        ))
    };
    let (_, [user, system, children_user, children_system]) = stat(&postmaster.to_string())?;
    let mut ticks = user + system + children_user + children_system;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some((parent, [user, system, ..])) = stat(pid)
            && parent == postmaster
        {
            ticks += user + system;
        }
    }
    Some(ticks / 100.0)
}

/// The control plane's kubeconfig, if one is set up (`tests/control-plane.sh`).
pub fn kubeconfig() -> Option<PathBuf> {
    std::env::var_os("SH_TEST_KUBECONFIG")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// A second control plane's kubeconfig, if one is set up beside the first (the simulated
/// node's, in `tests/run.sh`), for the section over two clusters.
pub fn second_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("SH_TEST_SIMULATED_KUBECONFIG")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .filter(|second| kubeconfig().as_ref() != Some(second))
}

/// The service binary, run as users run it, in its own process.
pub struct Service {
    child: Child,
    pub url: String,
    pub http: reqwest::Client,
    /// `perf record` of it, when the benchmark profiles (`tests/bench.sh --profile DIR`).
    profile: Option<Profile>,
}

/// A `perf record` of one service process, turned into a flamegraph when the service stops.
struct Profile {
    perf: Child,
    data: PathBuf,
}

/// Services started so far, to name their profiles.
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Service {
    /// Starts `submission-helper serve` on a free loopback port and waits until it answers.
    /// Without `cluster` it runs with no kubeconfig at all (stores, never dispatches).
    pub async fn start(
        database: &Database,
        cluster: Option<(&Path, &str)>,
    ) -> anyhow::Result<Self> {
        Service::start_with(database, cluster, &[]).await
    }

    /// [`Service::start`] with more of the service's settings, as environment variables.
    pub async fn start_with(
        database: &Database,
        cluster: Option<(&Path, &str)>,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_submission-helper"));
        command
            .arg("serve")
            .env("SUBMISSION_HELPER_LISTEN", format!("127.0.0.1:{port}"))
            .env("SUBMISSION_HELPER_DATABASE_URL", &database.url)
            .env("SUBMISSION_HELPER_RATE_LIMIT_PER_MINUTE", "0")
            .env("SUBMISSION_HELPER_PUBLIC_METRICS", "true")
            .env("RUST_LOG", "warn")
            // The service sets its own allocator (src/memory.rs), as `cargo run` starts it;
            // `MALLOC_ARENA_MAX=16` in the benchmark's environment, passed on, measures
            // glibc's default on 2 CPUs (8 per CPU) instead.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        match cluster {
            Some((kubeconfig, namespace)) => {
                command
                    .env("KUBECONFIG", kubeconfig)
                    .arg("--namespace")
                    .arg(namespace);
            }
            None => {
                command.env("KUBECONFIG", "/nonexistent");
            }
        }
        let child = command.spawn().context("start the service")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let profile = match std::env::var_os("SH_BENCH_PROFILE") {
            Some(folder) => Some(Profile::start(Path::new(&folder), &child)?),
            None => None,
        };
        let service = Service {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = service
                .http
                .get(format!("{}/healthz", service.url))
                .send()
                .await;
            if matches!(&answer, Ok(response) if response.status().is_success()) {
                return Ok(service);
            }
            if Instant::now() > deadline {
                bail!("the service did not answer /healthz within a minute");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory now and at its peak, in MiB (from /proc).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.child.id().context("the service has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .with_context(|| format!("{name} missing from /proc/{pid}/status"))?;
            let kib: f64 = line
                .split_whitespace()
                .nth(1)
                .context("no number")?
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok(Memory {
            now_mib: field("VmRSS:")?,
            peak_mib: field("VmHWM:")?,
        })
    }

    /// CPU time the process has used so far, user and system, in seconds (from /proc).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("the service has exited")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The fields after the command's name, which is in parentheses and may hold spaces:
        // utime and stime are the 14th and 15th of the line, in clock ticks (100 a second).
        let after_name = stat.rsplit_once(')').context("no command name")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| -> anyhow::Result<f64> {
            Ok(fields.get(index).context("a short stat line")?.parse()?)
        };
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(profile) = self.profile.take() {
            profile.finish().await?;
        }
        self.child.kill().await?;
        Ok(())
    }
}

impl Profile {
    fn start(folder: &Path, service: &Child) -> anyhow::Result<Self> {
        let pid = service.id().context("the service has exited")?;
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        std::fs::create_dir_all(folder)?;
        let data = folder.join(format!("service-{n}.data"));
        let perf = Command::new("perf")
            .args(["record", "-F", "499", "-g", "-o"])
            .arg(&data)
            .arg("-p")
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start perf record (tests/bench.sh --profile installs it)")?;
        eprintln!("profiling service {n} (pid {pid}) into {}", data.display());
        Ok(Profile { perf, data })
    }

    /// Stops the recording and writes the flamegraph beside it (`service-N.svg`).
    async fn finish(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.perf.id() {
            // perf writes its data out on SIGINT.
            Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await?;
        }
        self.perf.wait().await?;
        let svg = self.data.with_extension("svg");
        let script = format!(
            "perf script -i '{}' 2>/dev/null | inferno-collapse-perf | inferno-flamegraph > '{}'",
            self.data.display(),
            svg.display()
        );
        let made = Command::new("sh").arg("-c").arg(&script).status().await?;
        if !made.success() {
            bail!("could not make the flamegraph: {script}");
        }
        eprintln!("flamegraph: {}", svg.display());
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub now_mib: f64,
    pub peak_mib: f64,
}

/// Creates a token in `database` for `user` (before the service starts, as an operator would).
pub async fn token(database: &Database, user: &str, admin: bool) -> anyhow::Result<String> {
    let store = Store::connect(&database.url).await?;
    let (_, secret) = store.create_token(user, admin, false).await?;
    Ok(secret)
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Requests sent.
    pub requests: usize,
    /// Items they carried (submissions, or rows read).
    pub items: u64,
    pub elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Sample {
    pub fn per_second(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64()
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `fraction` of requests finished.
    pub fn quantile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * fraction).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

/// Runs `clients` concurrent loops of `operation` for `time` (each client sends at least one
/// request), and measures each call. `operation(client, n)` returns how many items it carried;
/// an error stops the run: a benchmark of failing requests measures nothing.
pub async fn drive<F, Fut>(clients: usize, time: Duration, operation: F) -> anyhow::Result<Sample>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send,
{
    let operation = Arc::new(operation);
    let started = Instant::now();
    let deadline = started + time;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let operation = operation.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut items = 0;
            let mut n = 0;
            loop {
                let sent = Instant::now();
                items += operation(client, n).await?;
                latencies.push(sent.elapsed());
                n += 1;
                if Instant::now() >= deadline {
                    break;
                }
            }
            anyhow::Ok((latencies, items))
        });
    }
    let mut latencies = Vec::new();
    let mut items = 0;
    while let Some(result) = tasks.join_next().await {
        let (some, count) = result??;
        latencies.extend(some);
        items += count;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Sample {
        requests: latencies.len(),
        items,
        elapsed,
        latencies,
    })
}

/// Sends a request and fails unless the answer is 2xx, with its body in the error.
pub async fn expect_success(request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    let response = request.send().await?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        bail!("{status}: {body}");
    }
    Ok(response)
}

/// Milliseconds with a sensible number of digits.
pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A count per second, rounded to what a noisy machine can tell apart.
pub fn rate(per_second: f64) -> String {
    if per_second >= 1000.0 {
        format!("{:.1}k/s", per_second / 1000.0)
    } else {
        format!("{per_second:.0}/s")
    }
}

/// A Markdown table, printed as it fills so a long run shows progress.
pub struct Table;

impl Table {
    pub fn start(title: &str, columns: &[&str]) -> Self {
        println!("\n### {title}\n");
        println!("| {} |", columns.join(" | "));
        println!("|{}", columns.iter().map(|_| " --- |").collect::<String>());
        Table
    }

    pub fn row(&self, cells: &[String]) {
        println!("| {} |", cells.join(" | "));
    }
}

/// A kube client for the control plane of `kubeconfig`.
pub async fn kube_client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// The node-sim binary, if the environment names one (tests/run.sh and tests/bench.sh do).
pub fn node_sim() -> Option<PathBuf> {
    std::env::var_os("SH_TEST_NODE_SIM").map(PathBuf::from)
}

/// Running payloads per simulated node: a node holds a few files open per running container,
/// and one at about 4,900 reached the usual limit of 20,000 open files.
pub const PODS_PER_NODE: usize = 1_500;

/// A `lone-` namespace of the local control plane (the test suite's shared simulated node
/// leaves those alone) whose pods run on simulated nodes of the benchmark's own.
pub struct LoneNamespace {
    pub client: kube::Client,
    pub name: String,
    /// Scratch space for the nodes and the payloads.
    pub work: tempfile::TempDir,
    nodes: Vec<(String, Child)>,
}

impl LoneNamespace {
    /// Creates `lone-bench-{kind}-…` with nodes enough for `pods` running payloads.
    pub async fn create(
        kubeconfig: &Path,
        node_sim: &Path,
        kind: &str,
        pods: usize,
    ) -> anyhow::Result<Self> {
        let client = kube_client(kubeconfig).await?;
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("lone-bench-{kind}-{}", &suffix[suffix.len() - 8..]);
        let namespace: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        kube::Api::all(client.clone())
            .create(&kube::api::PostParams::default(), &namespace)
            .await?;
        let mut lone = LoneNamespace {
            client,
            name,
            work: tempfile::tempdir()?,
            nodes: Vec::new(),
        };
        for node in 0..pods.div_ceil(PODS_PER_NODE).max(1) {
            let node_name = format!("node-{node}-{}", lone.name);
            let process = Command::new(node_sim)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(["--node-name", &node_name, "--namespace", &lone.name])
                .arg("--work-dir")
                .arg(lone.work.path().join(&node_name))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("start node-sim")?;
            lone.nodes.push((node_name, process));
        }
        Ok(lone)
    }

    /// Stops the nodes, then removes by force the pods no kubelet will end any more, the
    /// namespace and the Node objects.
    pub async fn remove(self) {
        use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
        use kube::api::{Api, DeleteParams, ListParams};
        let LoneNamespace {
            client,
            name,
            nodes,
            ..
        } = self;
        let node_names: Vec<String> = nodes.into_iter().map(|(node, _)| node).collect();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
        let _ = pods
            .delete_collection(
                &DeleteParams::default().grace_period(0),
                &ListParams::default(),
            )
            .await;
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&name, &DeleteParams::background())
            .await;
        let node_api: Api<Node> = Api::all(client);
        for node in node_names {
            let _ = node_api.delete(&node, &DeleteParams::default()).await;
        }
    }
}

/// Submits `submissions` through the batch endpoint, `per_request` at a time.
pub async fn submit_batches(
    service: &Service,
    secret: &str,
    submissions: Vec<serde_json::Value>,
    per_request: usize,
) -> anyhow::Result<()> {
    for batch in submissions.chunks(per_request.max(1)) {
        expect_success(
            service
                .http
                .post(format!("{}/v1/submissions/batch", service.url))
                .bearer_auth(secret)
                .json(&serde_json::json!({ "submissions": batch })),
        )
        .await
        .context("submit")?;
    }
    Ok(())
}

/// The time from `start` until a watch of `namespace`'s Jobs, open and listed before `start`
/// is called, has seen `jobs` Jobs for which `counts` holds (at most 10 minutes).
pub async fn time_until_jobs<F, Fut>(
    client: &Client,
    namespace: &str,
    jobs: usize,
    counts: fn(&Job) -> bool,
    start: F,
) -> anyhow::Result<Duration>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut seen = times_of_jobs(client, namespace, counts, [jobs]).await?;
    let started = Instant::now();
    start().await?;
    let finished = tokio::time::timeout(Duration::from_secs(600), seen.recv())
        .await
        .map_err(|_| anyhow::anyhow!("not every Job was seen within 10 minutes"))?
        .context("the watch of Jobs stopped")?;
    Ok(finished - started)
}

/// A watch of `namespace`'s Jobs, open and listed when this returns, that sends the moment it
/// has seen each number in `at` of Jobs for which `counts` holds; it stops after the largest.
pub async fn times_of_jobs<const N: usize>(
    client: &Client,
    namespace: &str,
    counts: fn(&Job) -> bool,
    at: [usize; N],
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<Instant>> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let (listed, listed_rx) = tokio::sync::oneshot::channel();
    let (seen_at, receiver) = tokio::sync::mpsc::unbounded_channel();
    let last = at.iter().copied().max().unwrap_or(0);
    tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut seen = HashSet::new();
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Ok(Some(event)) = stream.try_next().await {
            match event {
                watcher::Event::Apply(job) | watcher::Event::InitApply(job) => {
                    let new =
                        counts(&job) && job.metadata.name.is_some_and(|name| seen.insert(name));
                    if new && at.contains(&seen.len()) && seen_at.send(Instant::now()).is_err() {
                        return;
                    }
                }
                watcher::Event::InitDone => {
                    if let Some(listed) = listed.take() {
                        let _ = listed.send(());
                    }
                }
                watcher::Event::Init | watcher::Event::Delete(_) => {}
            }
            if seen.len() >= last {
                return;
            }
        }
    });
    listed_rx
        .await
        .context("the watch stopped before its first list")?;
    Ok(receiver)
}

/// Creates `manifests` with `concurrency` creates in flight, as a plain client would.
pub async fn create_jobs(
    api: &Api<Job>,
    manifests: Vec<Job>,
    concurrency: usize,
) -> anyhow::Result<()> {
    futures::stream::iter(manifests)
        .map(|job| async move { api.create(&PostParams::default(), &job).await })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}
