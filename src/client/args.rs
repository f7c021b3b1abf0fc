//! The client's command line: the CAF submission helper's flags for `submit`, kubectl's verbs
//! and flags for the rest.
//!
//! Only parsing lives here; each command's module turns its arguments into requests.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::duration;

/// The commands that talk to a running service over its HTTP API.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Submit a payload from the flags, or many from a JSON Lines file.
    Submit(Box<SubmitArgs>),
    /// Wait until submissions end.
    #[command(after_help = EXIT_CODES)]
    Wait(WaitArgs),
    /// List submissions, or the Jobs and pods the service runs, with kubectl's columns.
    Get(GetArgs),
    /// Show a submission in detail: its Job, its pods and why it failed.
    Describe(DescribeArgs),
    /// Print a submission's log, like `kubectl logs`.
    Logs(LogsArgs),
    /// Cancel submissions by id, or every active one that matches (`kubectl delete jobs -l`).
    Cancel(CancelArgs),
    /// Run failed or cancelled submissions again, with what failed only because of them.
    Rerun(RerunArgs),
    /// Check a token against a server and save both in the config file.
    Login(LoginArgs),
    /// Print a shell completion script (e.g. `source <(submission-helper completion bash)`).
    Completion(CompletionArgs),
}

/// The exit codes of `wait` and `submit --wait`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  every submission succeeded
  1  some failed or were cancelled
  2  a usage error, or the server refused a request or could not be reached
  3  the timeout passed before every submission ended";

/// The variable naming the server when `--server` does not.
pub const URL_VARIABLE: &str = "SUBMISSION_HELPER_URL";
/// The variable holding the token when `--token` does not.
pub const TOKEN_VARIABLE: &str = "SUBMISSION_HELPER_TOKEN";

/// Which service to talk to, and as whom.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// The service's URL, e.g. https://submission-helper.example.org [default: $SUBMISSION_HELPER_URL,
    /// then the config file written by `login`]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The API token [default: $SUBMISSION_HELPER_TOKEN, then the config file]. A flag is seen by
    /// every user of this machine in the process list: prefer the environment or `login`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// The fields of a submission, under the CAF submission helper's names. A field is sent only when
/// its flag is given; the server fills in the rest.
#[derive(Debug, Clone, Default, Args)]
pub struct SpecArgs {
    /// The Docker image of the payload, e.g. gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample
    /// [default: the server's --k8s-image]
    #[arg(long = "k8s-image", value_name = "IMAGE")]
    pub image: Option<String>,
    /// The Kubernetes secret to pull the image with; empty for none [server default:
    /// sh-k8s-registry-secret]
    #[arg(long = "k8s-registry-secret", value_name = "SECRET")]
    pub registry_secret: Option<String>,
    /// The PersistentVolumeClaim with the input data; empty for no volume [server default:
    /// ntuples-claim]
    #[arg(long = "k8s-volume-claim", value_name = "CLAIM")]
    pub volume_claim: Option<String>,
    /// Where the claim is mounted in the container [server default: /ntuples]
    #[arg(long = "k8s-mount-path", value_name = "PATH")]
    pub mount_path: Option<String>,
    /// A short name to find the submission by
    #[arg(long)]
    pub name: Option<String>,
    /// An environment variable of the payload (repeat for several)
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// A label of the Job and its pods (repeat for several)
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub label: Vec<(String, String)>,
    /// Memory requested, as a Kubernetes quantity (4000M, 4Gi) [server default: 4000M]
    #[arg(long, value_name = "QUANTITY")]
    pub memory: Option<String>,
    /// CPUs requested, as a Kubernetes quantity (1, 500m) [server default: 1]
    #[arg(long, value_name = "QUANTITY")]
    pub cpus: Option<String>,
    /// Minutes the payload may run before it is stopped and fails [server default: 1 day]
    #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(1..))]
    pub time: Option<u32>,
    /// Retries of a failed payload before the submission fails [server default: 3]
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// The task identifier, set as the label `identifier` of the Job and its pods
    #[arg(long, value_name = "ID")]
    pub identifier: Option<String>,
    /// The payload container's name (`kubectl logs POD -c TOOL`) [server default: the
    /// command's program]
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// A submission that must succeed first: its id, or with --file the name of another line
    /// of the same request (repeat for several)
    #[arg(long = "depends-on", value_name = "ID|NAME")]
    pub depends_on: Vec<String>,
    /// Run in this cluster only, by the server's name for it; the submission waits for it when
    /// it has no room [default: any with room, as the server places it]
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = SUBMIT_HELP)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Submit every line of this JSON Lines file, one submission object a line (`-` for standard
    /// input); the flags above fill in what a line lacks
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<String>,
    /// Lines sent per request with --file (up to 10000)
    #[arg(long, default_value_t = 500, requires = "file", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub chunk_size: u16,
    /// Mixed into the idempotency key of every chunk of --file: a file already submitted is
    /// submitted again as new submissions under a new key [default: none, the file's content
    /// alone decides]
    #[arg(long, value_name = "KEY", requires = "file")]
    pub batch_key: Option<String>,
    /// With --file: at most this many of the file's Jobs run at once (the file is then sent
    /// in one request, up to 10000 lines)
    #[arg(long, requires = "file", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: Option<u32>,
    /// Wait until every submission ends (exit codes as for `wait`)
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (90s, 10m, 2h, 1d) [default: no limit]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, requires = "wait")]
    pub timeout: Option<Duration>,
    /// Print the submissions as JSON instead of their ids
    #[arg(short, long, value_enum)]
    pub output: Option<SubmitOutput>,
    /// The payload, run as `bash -cl "COMMAND..."` (the words are joined with spaces)
    #[arg(last = true, value_name = "COMMAND", required_unless_present = "file")]
    pub command: Vec<String>,
}

const SUBMIT_HELP: &str = "\
Examples:
  submission-helper submit --k8s-image gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample \\
      -- analyze config/master/analyze.cfg
  submission-helper submit --file tasks.jsonl --label campaign=mc16e --wait

A rerun of `submit --file` after an interruption submits only what the first run did not:
every chunk carries an Idempotency-Key derived from its lines and its position in the file.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubmitOutput {
    Json,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The submissions to wait for
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Give up after this long (90s, 10m, 2h, 1d) [default: no limit]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    #[value(alias = "submission", alias = "sub")]
    Submissions,
    #[value(alias = "job")]
    Jobs,
    #[value(alias = "pod", alias = "po")]
    Pods,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// More columns
    Wide,
    /// The API's JSON
    Json,
    /// Only the names (`submission/ID`, `job.batch/NAME`, `pod/NAME`)
    Name,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// What to list
    #[arg(value_enum)]
    pub kind: Kind,
    /// Only this submission's (a submission id; for jobs and pods also an object's name)
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Only objects with this label (repeat for several)
    #[arg(
        short = 'l',
        long = "selector",
        alias = "label",
        value_name = "KEY=VALUE"
    )]
    pub selector: Vec<String>,
    /// Only submissions in this state (repeat for several)
    #[arg(long, value_name = "STATE", value_parser = STATES)]
    pub state: Vec<String>,
    /// Only this cluster's submissions, Jobs or pods, by the server's name for it [default:
    /// every cluster's]
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// After listing, keep polling and print a line for every object that changes
    #[arg(short, long)]
    pub watch: bool,
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Submissions listed at most, newest first (0: all)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub limit: usize,
}

const STATES: [&str; 6] = [
    "queued",
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
];

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(value_name = "ID")]
    pub id: String,
    /// Stream new lines until the payload ends
    #[arg(short, long)]
    pub follow: bool,
    /// This pod of the submission [default: the newest that started]
    #[arg(long, value_name = "POD", conflicts_with = "previous")]
    pub pod: Option<String>,
    /// The attempt before the newest (a retried payload's earlier pod)
    #[arg(short, long)]
    pub previous: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
    /// Prefix each line with the time it was written
    #[arg(long)]
    pub timestamps: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The submissions to cancel
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<String>,
    /// Cancel every active submission (with -l: every one with these labels)
    #[arg(long)]
    pub all: bool,
    /// With --all: only submissions with this label (repeat for several)
    #[arg(short = 'l', long = "selector", alias = "label", value_name = "KEY=VALUE",
          value_parser = key_value, requires = "all")]
    pub selector: Vec<(String, String)>,
    /// With --all: do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(short, long, requires = "all")]
    pub yes: bool,
    /// With --all, for admins: every user's submissions, not only your own
    #[arg(long, requires = "all")]
    pub all_users: bool,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The submissions to rerun
    #[arg(
        value_name = "ID",
        required_unless_present = "selector",
        conflicts_with = "selector"
    )]
    pub ids: Vec<String>,
    /// Rerun every failed or cancelled submission with this label (repeat for several)
    #[arg(short = 'l', long = "selector", alias = "label", value_name = "KEY=VALUE",
          value_parser = key_value)]
    pub selector: Vec<(String, String)>,
    /// With -l: only failed submissions
    #[arg(long, requires = "selector")]
    pub failed: bool,
    /// With -l: only cancelled submissions
    #[arg(long, requires = "selector")]
    pub cancelled: bool,
    /// Memory for the new run, e.g. 8000M (its request, and its limit if it has one)
    #[arg(long, value_name = "MEMORY")]
    pub memory: Option<String>,
    /// CPUs for the new run
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,
    /// Minutes the new run may take
    #[arg(long, value_name = "MINUTES")]
    pub time: Option<u32>,
    /// Another image for the new run
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// With -l: do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(short, long, requires = "selector")]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The service's URL [default: $SUBMISSION_HELPER_URL, then the config file's]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `KEY=VALUE`, split at the first `=`; the value may be empty, the key may not.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_splits_at_the_first_equals_sign() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(key_value("a="), Ok(("a".into(), String::new())));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }
}
