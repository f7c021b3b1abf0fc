//! `submit`: one submission from the flags (`-- COMMAND...`), or every line of a JSON Lines file
//! sent in chunks through the batch endpoint.
//!
//! A flag becomes a field only when it is given, so the server's defaults apply to the rest.
//! Each chunk of a file carries an `Idempotency-Key` derived from its lines and its position
//! ([`chunk_key`]): a rerun after an interruption is answered from what the first run stored,
//! and a line is never submitted twice. A regular file is read and checked whole before anything
//! is sent; standard input is sent chunk by chunk as it arrives.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use super::api::Api;
use super::args::{SpecArgs, SubmitArgs, SubmitOutput};
use super::error::ClientError;
use super::jsonl::{
    Chunk, Chunker, MAX_CHUNK_BYTES, MAX_LINES_PER_REQUEST, chunk_key, in_file_terms, parse_chunk,
};
use super::model::{self, Batch, Submission};
use super::outcome::Outcome;
use super::{terminal, wait};

/// How many bad lines of a file are named at once.
const BAD_LINES_SHOWN: usize = 10;

/// The request fields the flags ask for: only those given, under the API's names.
pub fn fields_from_flags(spec: &SpecArgs, command: &[String]) -> Map<String, Value> {
    let mut fields = Map::new();
    let text = |value: &str| Value::String(value.to_owned());
    // An empty secret or claim asks for none, as the seed's empty option did.
    let or_null = |value: &str| {
        if value.is_empty() {
            Value::Null
        } else {
            text(value)
        }
    };
    if let Some(image) = &spec.image {
        fields.insert("image".into(), text(image));
    }
    if let Some(secret) = &spec.registry_secret {
        fields.insert("registry_secret".into(), or_null(secret));
    }
    if let Some(claim) = &spec.volume_claim {
        fields.insert("volume_claim".into(), or_null(claim));
    }
    if let Some(path) = &spec.mount_path {
        fields.insert("mount_path".into(), text(path));
    }
    if let Some(name) = &spec.name {
        fields.insert("name".into(), text(name));
    }
    let pairs = |pairs: &[(String, String)]| -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(key, value)| (key.clone(), text(value)))
                .collect(),
        )
    };
    if !spec.env.is_empty() {
        fields.insert("env".into(), pairs(&spec.env));
    }
    if !spec.label.is_empty() {
        fields.insert("labels".into(), pairs(&spec.label));
    }
    let mut requests = Map::new();
    if let Some(memory) = &spec.memory {
        requests.insert("memory".into(), text(memory));
    }
    if let Some(cpus) = &spec.cpus {
        requests.insert("cpu".into(), text(cpus));
    }
    if !requests.is_empty() {
        fields.insert("resources".into(), json!({ "requests": requests }));
    }
    if let Some(minutes) = spec.time {
        fields.insert(
            "active_deadline_seconds".into(),
            json!(u64::from(minutes) * 60),
        );
    }
    if let Some(retries) = spec.retries {
        fields.insert("backoff_limit".into(), json!(retries));
    }
    if let Some(identifier) = &spec.identifier {
        fields.insert("identifier".into(), text(identifier));
    }
    if let Some(tool) = &spec.tool {
        fields.insert("tool".into(), text(tool));
    }
    if !spec.depends_on.is_empty() {
        fields.insert("depends_on".into(), json!(spec.depends_on));
    }
    if let Some(cluster) = &spec.cluster {
        fields.insert("cluster".into(), text(cluster));
    }
    if !command.is_empty() {
        fields.insert("command".into(), text(&command.join(" ")));
    }
    fields
}

pub async fn run(api: &Api, args: SubmitArgs) -> Result<Outcome, ClientError> {
    let defaults = fields_from_flags(&args.spec, &args.command);
    let submitted = match &args.file {
        None => vec![submit_one(api, defaults, args.output).await?],
        Some(file) => submit_file(api, file, &args, &defaults).await?,
    };
    if !args.wait {
        return Ok(Outcome::Success);
    }
    let ids: Vec<String> = submitted.iter().map(|s| s.id.clone()).collect();
    wait::wait_for(api, &ids, submitted, args.timeout).await
}

async fn submit_one(
    api: &Api,
    fields: Map<String, Value>,
    output: Option<SubmitOutput>,
) -> Result<Submission, ClientError> {
    // A key of this invocation's own: a request the server asked to send again is stored once.
    let key = format!("sh-cli-{}", uuid::Uuid::now_v7().simple());
    let posted = api
        .post::<Value>("v1/submissions", &Value::Object(fields), Some(&key))
        .await?;
    let submission: Submission = model::read(&posted.body)?;
    match output {
        Some(SubmitOutput::Json) => terminal::print_line(&pretty(&posted.body))?,
        None => terminal::print_line(&submission.id)?,
    }
    Ok(submission)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Where the chunks come from: a file read whole, or standard input as it arrives.
enum Chunks {
    Read(std::vec::IntoIter<Chunk>),
    Arriving(tokio::sync::mpsc::Receiver<std::io::Result<Chunk>>),
}

impl Chunks {
    async fn next(&mut self) -> Option<std::io::Result<Chunk>> {
        match self {
            Chunks::Read(chunks) => chunks.next().map(Ok),
            Chunks::Arriving(receiver) => receiver.recv().await,
        }
    }
}

async fn submit_file(
    api: &Api,
    file: &str,
    args: &SubmitArgs,
    defaults: &Map<String, Value>,
) -> Result<Vec<Submission>, ClientError> {
    // A batch's limit covers one request: the whole file goes in one.
    let size = match args.max_concurrent {
        Some(_) => MAX_LINES_PER_REQUEST + 1,
        None => usize::from(args.chunk_size),
    };
    let (source, mut chunks, total) = if file == "-" {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        std::thread::spawn(move || {
            for chunk in Chunker::new(std::io::stdin().lock(), size) {
                if sender.blocking_send(chunk).is_err() {
                    break;
                }
            }
        });
        (
            "standard input".to_owned(),
            Chunks::Arriving(receiver),
            None,
        )
    } else {
        let opened = std::fs::File::open(file).map_err(|source| ClientError::Io {
            what: format!("opening {file}"),
            source,
        })?;
        let chunks: Vec<Chunk> = Chunker::new(std::io::BufReader::new(opened), size)
            .collect::<Result<_, _>>()
            .map_err(|source| ClientError::Io {
                what: format!("reading {file}"),
                source,
            })?;
        // Every line is checked before anything is sent.
        let mut bad = Vec::new();
        for chunk in &chunks {
            if let Err(mut lines) = parse_chunk(file, chunk, defaults) {
                bad.append(&mut lines);
            }
        }
        if !bad.is_empty() {
            return Err(bad_lines(bad));
        }
        if args.max_concurrent.is_some()
            && (chunks.len() > 1 || chunks.iter().any(|c| c.lines.len() > MAX_LINES_PER_REQUEST))
        {
            return Err(ClientError::Usage(format!(
                "--max-concurrent limits one request, of at most {MAX_LINES_PER_REQUEST} lines and {} MiB; {file} has more",
                MAX_CHUNK_BYTES / 1024 / 1024
            )));
        }
        let total = chunks.iter().map(|chunk| chunk.lines.len() as u64).sum();
        (
            file.to_owned(),
            Chunks::Read(chunks.into_iter()),
            Some(total),
        )
    };
    let progress = Progress::new(total);
    let mut submitted = Vec::new();
    let mut replayed_count = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| ClientError::Io {
            what: format!("reading {source}"),
            source: error,
        })?;
        if args.max_concurrent.is_some()
            && (chunk.index > 0 || chunk.lines.len() > MAX_LINES_PER_REQUEST)
        {
            progress.finish();
            return Err(ClientError::Usage(format!(
                "--max-concurrent limits one request, of at most {MAX_LINES_PER_REQUEST} lines and {} MiB; {source} has more",
                MAX_CHUNK_BYTES / 1024 / 1024
            )));
        }
        let submissions = parse_chunk(&source, &chunk, defaults).map_err(bad_lines)?;
        let key = chunk_key(args.batch_key.as_deref(), &chunk);
        let mut body = json!({ "submissions": submissions });
        if let Some(limit) = args.max_concurrent {
            body["max_concurrent"] = json!(limit);
        }
        let posted = match api
            .post::<Batch>("v1/submissions/batch", &body, Some(&key))
            .await
        {
            Ok(posted) => posted,
            Err(ClientError::Refused(problem)) => {
                progress.finish();
                if !submitted.is_empty() {
                    eprintln!(
                        "{} submissions of {source} before {} were stored; once it is fixed, a rerun submits only the rest",
                        submitted.len(),
                        chunk.span()
                    );
                }
                return Err(ClientError::Refused(in_file_terms(
                    problem, &source, &chunk,
                )));
            }
            Err(error) => {
                progress.finish();
                return Err(error);
            }
        };
        let mut printed = String::new();
        for item in &posted.body.submissions {
            let submission: Submission = model::read(item)?;
            match args.output {
                Some(SubmitOutput::Json) => printed.push_str(&item.to_string()),
                None => printed.push_str(&submission.id),
            }
            printed.push('\n');
            submitted.push(submission);
        }
        progress.print(&printed)?;
        let count = posted.body.submissions.len();
        if posted.replayed {
            replayed_count += count;
        }
        progress.chunk_done(&source, &chunk, count, posted.replayed);
    }
    progress.finish();
    let earlier = match replayed_count {
        0 => String::new(),
        count => format!(" ({count} of them by an earlier run, not submitted again)"),
    };
    eprintln!("{} submissions from {source}{earlier}", submitted.len());
    Ok(submitted)
}

fn bad_lines(mut bad: Vec<String>) -> ClientError {
    let count = bad.len();
    bad.truncate(BAD_LINES_SHOWN);
    let more = match count.saturating_sub(BAD_LINES_SHOWN) {
        0 => String::new(),
        more => format!("\n  ... and {more} more"),
    };
    ClientError::Usage(format!(
        "{count} line(s) cannot be submitted, nothing of them was sent:\n  {}{more}",
        bad.join("\n  ")
    ))
}

/// A progress bar on a terminal; plain lines on standard error otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        let bar = terminal::live_stderr().then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{bar:40} {pos}/{len} submitted [{elapsed}] {msg}",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{spinner} {pos} submitted [{elapsed}] {msg}",
                ),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// Prints to standard output without tearing the bar.
    fn print(&self, text: &str) -> Result<(), ClientError> {
        match &self.bar {
            Some(bar) => bar.suspend(|| terminal::print(text)),
            None => terminal::print(text),
        }
    }

    fn chunk_done(&self, source: &str, chunk: &Chunk, count: usize, replayed: bool) {
        let how = if replayed {
            "submitted by an earlier run, not again"
        } else {
            "submitted"
        };
        match &self.bar {
            Some(bar) => {
                bar.inc(count as u64);
                if replayed {
                    bar.set_message(format!("({} {how})", chunk.span()));
                }
            }
            None => eprintln!("{source} {}: {count} {how}", chunk.span()),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::client::args::ClientCommand;
    use clap::Parser;

    fn submit_args(argv: &[&str]) -> SubmitArgs {
        let mut full = vec!["submission-helper", "submit"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Client(ClientCommand::Submit(args)) => *args,
            _ => panic!("expected submit"),
        }
    }

    #[test]
    fn every_flag_maps_to_its_api_field() {
        let args = submit_args(&[
            "--k8s-image",
            "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
            "--k8s-registry-secret",
            "my-secret",
            "--k8s-volume-claim",
            "my-claim",
            "--k8s-mount-path",
            "/data",
            "--name",
            "ttbar",
            "--env",
            "NEVENTS=1000",
            "--env",
            "A=b=c",
            "--label",
            "campaign=mc16e",
            "--memory",
            "4000M",
            "--cpus",
            "1",
            "--time",
            "90",
            "--retries",
            "3",
            "--",
            "analyze",
            "config/master/analyze.cfg",
        ]);

        let fields = fields_from_flags(&args.spec, &args.command);

        assert_eq!(
            Value::Object(fields),
            json!({
                "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
                "registry_secret": "my-secret",
                "volume_claim": "my-claim",
                "mount_path": "/data",
                "name": "ttbar",
                "env": {"NEVENTS": "1000", "A": "b=c"},
                "labels": {"campaign": "mc16e"},
                "resources": {"requests": {"memory": "4000M", "cpu": "1"}},
                "active_deadline_seconds": 5400,
                "backoff_limit": 3,
                "command": "analyze config/master/analyze.cfg",
            })
        );
    }

    #[test]
    fn a_flag_not_given_sends_no_field_and_an_empty_secret_or_claim_sends_null() {
        let bare = submit_args(&["--", "true"]);
        let none = submit_args(&[
            "--k8s-registry-secret",
            "",
            "--k8s-volume-claim",
            "",
            "--",
            "echo",
            "a;",
            "echo",
            "b",
        ]);

        assert_eq!(
            Value::Object(fields_from_flags(&bare.spec, &bare.command)),
            json!({"command": "true"})
        );
        assert_eq!(
            Value::Object(fields_from_flags(&none.spec, &none.command)),
            json!({"registry_secret": null, "volume_claim": null, "command": "echo a; echo b"})
        );
    }

    #[test]
    fn cluster_pins_the_submission_and_every_line_of_a_file_that_names_none() {
        let one = submit_args(&["--cluster", "onsite", "--", "analyze"]);
        let file = submit_args(&["--cluster", "onsite", "--file", "tasks.jsonl"]);
        let defaults = fields_from_flags(&file.spec, &file.command);
        let line = |value: Value| match value {
            Value::Object(mut fields) => {
                crate::client::jsonl::fill(&mut fields, &defaults);
                fields.get("cluster").cloned().unwrap_or_default()
            }
            _ => panic!("a line is an object"),
        };

        assert_eq!(
            Value::Object(fields_from_flags(&one.spec, &one.command)),
            json!({"cluster": "onsite", "command": "analyze"})
        );
        assert_eq!(line(json!({"command": "a"})), "onsite");
        assert_eq!(line(json!({"command": "b", "cluster": "cloud"})), "cloud");
    }

    #[test]
    fn a_command_is_needed_unless_a_file_is_given_and_it_follows_the_double_dash() {
        let no_command = Cli::try_parse_from(["submission-helper", "submit", "--k8s-image", "i"]);
        let file = submit_args(&["--file", "tasks.jsonl"]);
        let zero_minutes =
            Cli::try_parse_from(["submission-helper", "submit", "--time", "0", "--", "true"]);

        assert!(no_command.is_err());
        assert!(file.command.is_empty());
        assert!(zero_minutes.is_err());
    }
}
