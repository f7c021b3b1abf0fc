//! The service's benchmark: what it costs to take work, to get it onto the cluster, and to
//! query a million records, each figure beside a reference measured in the same run.
//!
//!   tests/bench.sh                      everything, full size (sets up Postgres and the
//!                                       control plane, then runs `cargo bench --bench service`)
//!   cargo bench --bench service -- --only accept,queries --rows 200000
//!   cargo bench --bench service -- --only live --live 2000
//!   cargo bench --bench service -- --only campaign
//!   cargo bench --bench service -- --only backlog --backlog 100000
//!   cargo bench --bench service -- --only events --subscribers 500
//!   cargo bench --bench service -- --only kueue   with Kueue beside the control plane
//!   cargo bench --bench service -- --only clusters  with a second control plane
//!   cargo test --bench service          the seconds-long smoke run CI does
//!
//! It prints Markdown tables (BENCHMARKS.md is made of them) and never fails for being slow:
//! it fails only when the service answers wrongly. Sections whose server is not set up
//! (`SH_TEST_POSTGRES_URL`, `SH_TEST_KUBECONFIG`, `SH_TEST_NODE_SIM`) are skipped with a note, except under
//! `SH_TEST_REQUIRE_ALL` (tests/run.sh), where a missing server is an error.

mod accept;
mod backlog;
mod campaign;
mod cancel;
mod cluster;
mod clusters;
mod events;
mod follow;
mod harness;
mod kueue;
mod live;
mod queries;

use anyhow::{Context as _, bail};

use harness::{Backend, Scale, Table};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --bench service` does not: the smoke run.
    let mut scale = if arguments.iter().any(|argument| argument == "--bench") {
        Scale::full()
    } else {
        Scale::smoke()
    };
    let mut only: Option<Vec<String>> = None;
    let mut database: Option<String> = None;
    let mut arguments = arguments.into_iter();
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--only" => {
                let sections = arguments
                    .next()
                    .context("--only needs a list of sections")?;
                only = Some(sections.split(',').map(str::to_owned).collect());
            }
            "--live" => {
                scale.live = arguments
                    .next()
                    .context("--live needs a number")?
                    .parse()
                    .context("--live needs a number")?;
            }
            "--cancel-live" => {
                scale.cancel_live = arguments
                    .next()
                    .context("--cancel-live needs a number")?
                    .parse()
                    .context("--cancel-live needs a number")?;
            }
            "--subscribers" => {
                scale.subscribers = arguments
                    .next()
                    .context("--subscribers needs a number")?
                    .parse()
                    .context("--subscribers needs a number")?;
            }
            "--backlog" => {
                scale.backlog = arguments
                    .next()
                    .context("--backlog needs a number")?
                    .parse()
                    .context("--backlog needs a number")?;
            }
            "--runs" => {
                scale.runs = arguments
                    .next()
                    .context("--runs needs a number")?
                    .parse()
                    .context("--runs needs a number")?;
            }
            "--jobs" => {
                let sizes = arguments
                    .next()
                    .context("--jobs needs sizes, as 500,5000")?;
                let mut sizes = sizes.split(',').map(str::parse::<usize>);
                scale.jobs = sizes.next().context("--jobs needs a size")??;
                scale.jobs_large = sizes.next().transpose()?.unwrap_or(0);
            }
            "--database" => {
                database = Some(
                    arguments
                        .next()
                        .context("--database needs sqlite or postgres")?,
                );
            }
            "--rows" => {
                scale.rows = arguments
                    .next()
                    .context("--rows needs a number")?
                    .parse()
                    .context("--rows needs a number")?;
            }
            _ => {}
        }
    }
    let wanted = |section: &str| {
        only.as_ref()
            .is_none_or(|only| only.iter().any(|s| s == section))
    };
    let require_all =
        std::env::var_os("SH_TEST_REQUIRE_ALL").is_some_and(|value| !value.is_empty());
    let skip = |what: &str| -> anyhow::Result<()> {
        if require_all {
            bail!("{what} is not set up (tests/run.sh and tests/bench.sh set it up)");
        }
        println!("\n(skipped: {what} is not set up; tests/bench.sh sets it up)");
        Ok(())
    };

    println!(
        "# submission-helper benchmark ({} run)",
        if scale.full { "full" } else { "smoke" }
    );
    println!("\n{}", machine());
    let mut backends = vec![Backend::Sqlite];
    if harness::postgres_server().is_some() {
        backends.push(Backend::Postgres);
    } else if wanted("accept") || wanted("queries") || wanted("campaign") {
        skip("Postgres (SH_TEST_POSTGRES_URL)")?;
    }
    if let Some(database) = &database {
        backends.retain(|backend| backend.to_string().eq_ignore_ascii_case(database));
    }

    let mut memory = Vec::new();
    if wanted("accept") {
        for backend in &backends {
            let (idle, loaded) = accept::run(*backend, scale).await?;
            memory.push((format!("idle, no cluster ({backend})"), idle));
            memory.push((format!("after the accept-path load ({backend})"), loaded));
        }
    }
    if wanted("campaign") {
        for backend in &backends {
            campaign::run(*backend, scale).await?;
        }
    }
    if wanted("events") {
        events::run(scale).await?;
    }
    if wanted("e2e") {
        match harness::kubeconfig() {
            Some(kubeconfig) => cluster::run(&kubeconfig, &backends, scale).await?,
            None => skip("a control plane (SH_TEST_KUBECONFIG)")?,
        }
    }
    // Over two clusters only where a second control plane is set up, or when asked for by name.
    let named = |section: &str| {
        only.as_ref()
            .is_some_and(|only| only.iter().any(|s| s == section))
    };
    if wanted("clusters") && (named("clusters") || harness::second_kubeconfig().is_some()) {
        match (harness::kubeconfig(), harness::second_kubeconfig()) {
            (Some(first), Some(second)) => clusters::run(&first, &second, scale).await?,
            _ => skip("two control planes (SH_TEST_KUBECONFIG, SH_TEST_SIMULATED_KUBECONFIG)")?,
        }
    }
    if wanted("backlog") {
        match harness::kubeconfig() {
            Some(kubeconfig) => {
                for backend in &backends {
                    backlog::run(&kubeconfig, *backend, scale).await?;
                }
            }
            None => skip("a control plane (SH_TEST_KUBECONFIG)")?,
        }
    }
    // Only where Kueue runs: its Job webhook would slow every other section's creates, so
    // tests/bench.sh and tests/run.sh start it afterwards and ask for this section alone.
    if wanted("kueue") && kueue::available() {
        match harness::kubeconfig() {
            Some(kubeconfig) => kueue::run(&kubeconfig, scale).await?,
            None => skip("a control plane (SH_TEST_KUBECONFIG)")?,
        }
    }
    if wanted("live") {
        match (harness::kubeconfig(), harness::node_sim()) {
            (Some(kubeconfig), Some(node_sim)) => live::run(&kubeconfig, &node_sim, scale).await?,
            _ => skip("a control plane and node-sim (SH_TEST_KUBECONFIG, SH_TEST_NODE_SIM)")?,
        }
    }
    if wanted("cancel") {
        match (harness::kubeconfig(), harness::node_sim()) {
            (Some(kubeconfig), Some(node_sim)) => {
                cancel::run(&kubeconfig, &node_sim, scale).await?
            }
            _ => skip("a control plane and node-sim (SH_TEST_KUBECONFIG, SH_TEST_NODE_SIM)")?,
        }
    }
    if wanted("follow") {
        match (harness::kubeconfig(), harness::node_sim()) {
            (Some(kubeconfig), Some(node_sim)) => {
                follow::run(&kubeconfig, &node_sim, scale).await?
            }
            _ => skip("a control plane and node-sim (SH_TEST_KUBECONFIG, SH_TEST_NODE_SIM)")?,
        }
    }
    if wanted("queries") {
        for backend in &backends {
            let outcome = queries::run(*backend, scale).await?;
            memory.push((
                format!("after the queries at {} rows ({backend})", scale.rows),
                outcome.memory,
            ));
        }
    }
    if !memory.is_empty() {
        let table = Table::start(
            "Memory of the service process",
            &["when", "RSS", "peak RSS"],
        );
        for (when, figure) in memory {
            table.row(&[
                when,
                format!("{:.1} MiB", figure.now_mib),
                format!("{:.1} MiB", figure.peak_mib),
            ]);
        }
    }
    Ok(())
}

/// The machine the figures were taken on.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .next()
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!(
        "Machine: {cpus} CPUs ({model}){memory}; {} build of the service.",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}
