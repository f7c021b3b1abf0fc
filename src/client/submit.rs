//! `submit`: one submission from the flags (`-- COMMAND...`), or every line of a JSON Lines file
//! sent in chunks through the batch endpoint.
//!
//! A flag becomes a field only when it is given, so the server's defaults apply to the rest.
//! Each chunk of a file carries an `Idempotency-Key` derived from its lines and its position
//! ([`chunk_key`]): a rerun after an interruption is answered from what the first run stored,
//! and a line is never submitted twice. A regular file is read and checked whole before anything
//! is sent; standard input is sent chunk by chunk as it arrives.

use std::io::BufRead;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::api::{Api, ClientError, Problem};
use super::args::{SpecArgs, SubmitArgs, SubmitOutput};
use super::model::{self, Batch, Submission};
use super::{Outcome, terminal, wait};

/// A chunk is cut before it grows past this, well under the server's 64 MiB a request.
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;
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
    if !command.is_empty() {
        fields.insert("command".into(), text(&command.join(" ")));
    }
    fields
}

/// Fills what `line` lacks from `defaults`, key by key inside objects (`env`, `labels`,
/// `resources`): a line's own values, `null` included, always win.
pub fn fill(line: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (key, default) in defaults {
        match (line.get_mut(key), default) {
            (None, _) => {
                line.insert(key.clone(), default.clone());
            }
            (Some(Value::Object(own)), Value::Object(default)) => fill(own, default),
            (Some(_), _) => {}
        }
    }
}

/// A line of the file that holds something (blank lines are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based, as editors count.
    pub number: usize,
    pub text: String,
}

/// Consecutive lines sent in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position in the file.
    pub index: usize,
    pub lines: Vec<Line>,
}

impl Chunk {
    fn span(&self) -> String {
        match (self.lines.first(), self.lines.last()) {
            (Some(first), Some(last)) if first.number != last.number => {
                format!("lines {}-{}", first.number, last.number)
            }
            (Some(first), _) => format!("line {}", first.number),
            _ => "no lines".into(),
        }
    }
}

/// The most submissions one batch request may carry (the server's limit).
const MAX_LINES_PER_REQUEST: usize = 10_000;

/// Cuts lines into chunks of `size` lines, or fewer when they would pass [`MAX_CHUNK_BYTES`].
/// The cut depends on the lines alone, so the same input always gives the same chunks.
pub struct Chunker<R> {
    reader: R,
    size: usize,
    number: usize,
    index: usize,
    held: Option<Line>,
    done: bool,
}

impl<R: BufRead> Chunker<R> {
    pub fn new(reader: R, size: usize) -> Self {
        Chunker {
            reader,
            size: size.max(1),
            number: 0,
            index: 0,
            held: None,
            done: false,
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        if let Some(line) = self.held.take() {
            return Ok(Some(line));
        }
        let mut text = String::new();
        loop {
            text.clear();
            if self.reader.read_line(&mut text)? == 0 {
                return Ok(None);
            }
            self.number += 1;
            let trimmed = text.trim_end_matches(['\n', '\r']);
            if !trimmed.trim().is_empty() {
                return Ok(Some(Line {
                    number: self.number,
                    text: trimmed.to_owned(),
                }));
            }
        }
    }
}

impl<R: BufRead> Iterator for Chunker<R> {
    type Item = std::io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut lines = Vec::new();
        let mut bytes = 0;
        while lines.len() < self.size {
            match self.next_line() {
                Ok(Some(line)) => {
                    if !lines.is_empty() && bytes + line.text.len() > MAX_CHUNK_BYTES {
                        self.held = Some(line);
                        break;
                    }
                    bytes += line.text.len() + 1;
                    lines.push(line);
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
        if lines.is_empty() {
            return None;
        }
        let chunk = Chunk {
            index: self.index,
            lines,
        };
        self.index += 1;
        Some(Ok(chunk))
    }
}

/// The chunk's `Idempotency-Key`: SHA-256 of its position and its lines as they are in the file
/// (and the `--batch-key`, if given), each length-prefixed so no two inputs hash alike.
pub fn chunk_key(batch_key: Option<&str>, chunk: &Chunk) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(b"submission-helper submit --file, v1");
    field(batch_key.unwrap_or_default().as_bytes());
    field(&(chunk.index as u64).to_be_bytes());
    for line in &chunk.lines {
        field(line.text.as_bytes());
    }
    format!("sh-batch-{:x}", hash.finalize())
}

/// The submissions of a chunk: each line a JSON object, filled from the flags. Every bad line
/// is named (the first few), with its line number.
pub fn parse_chunk(
    source: &str,
    chunk: &Chunk,
    defaults: &Map<String, Value>,
) -> Result<Vec<Value>, Vec<String>> {
    let mut submissions = Vec::with_capacity(chunk.lines.len());
    let mut bad = Vec::new();
    for line in &chunk.lines {
        match serde_json::from_str::<Value>(&line.text) {
            Ok(Value::Object(mut fields)) => {
                fill(&mut fields, defaults);
                submissions.push(Value::Object(fields));
            }
            Ok(_) => bad.push(format!("{source}:{}: not a JSON object", line.number)),
            Err(error) => bad.push(format!("{source}:{}: not JSON: {error}", line.number)),
        }
    }
    if bad.is_empty() {
        Ok(submissions)
    } else {
        Err(bad)
    }
}

/// A batch refused with field errors, told in the file's terms: `submissions[3].image` of the
/// chunk becomes `tasks.jsonl:1504: image`.
pub fn in_file_terms(mut problem: Problem, source: &str, chunk: &Chunk) -> Problem {
    for error in &mut problem.errors {
        let Some(rest) = error.field.strip_prefix("submissions[") else {
            continue;
        };
        let Some((index, field)) = rest.split_once(']') else {
            continue;
        };
        if let Some(line) = index
            .parse::<usize>()
            .ok()
            .and_then(|index| chunk.lines.get(index))
        {
            let field = field.trim_start_matches('.');
            error.field = format!("{source}:{}: {field}", line.number);
        }
    }
    problem.detail = format!(
        "{source} {} were refused, none of them was stored: {}",
        chunk.span(),
        problem.detail
    );
    problem
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
    use crate::client::args::ClientCommand;
    use crate::config::{Cli, Command};
    use clap::Parser;

    fn submit_args(argv: &[&str]) -> SubmitArgs {
        let mut full = vec!["submission-helper", "submit"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Client(ClientCommand::Submit(args)) => *args,
            _ => panic!("expected submit"),
        }
    }

    fn chunks(text: &str, size: usize) -> Vec<Chunk> {
        Chunker::new(text.as_bytes(), size)
            .collect::<Result<_, _>>()
            .expect("chunks")
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
    fn a_command_is_needed_unless_a_file_is_given_and_it_follows_the_double_dash() {
        let no_command = Cli::try_parse_from(["submission-helper", "submit", "--k8s-image", "i"]);
        let file = submit_args(&["--file", "tasks.jsonl"]);
        let zero_minutes =
            Cli::try_parse_from(["submission-helper", "submit", "--time", "0", "--", "true"]);

        assert!(no_command.is_err());
        assert!(file.command.is_empty());
        assert!(zero_minutes.is_err());
    }

    #[test]
    fn flags_fill_only_what_a_line_lacks_key_by_key() {
        let mut line = serde_json::from_value::<Map<String, Value>>(json!({
            "command": "run 1",
            "labels": {"campaign": "own"},
            "volume_claim": null,
            "resources": {"requests": {"cpu": "2"}}
        }))
        .expect("object");
        let defaults = serde_json::from_value::<Map<String, Value>>(json!({
            "image": "img",
            "command": "default",
            "labels": {"campaign": "flag", "batch": "b1"},
            "volume_claim": "claim",
            "resources": {"requests": {"cpu": "1", "memory": "4000M"}}
        }))
        .expect("object");

        fill(&mut line, &defaults);

        assert_eq!(
            Value::Object(line),
            json!({
                "command": "run 1",
                "image": "img",
                "labels": {"campaign": "own", "batch": "b1"},
                "volume_claim": null,
                "resources": {"requests": {"cpu": "2", "memory": "4000M"}}
            })
        );
    }

    #[test]
    fn lines_are_cut_into_chunks_that_skip_blank_lines_and_keep_line_numbers() {
        let chunks = chunks("{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}\n   \n{\"a\":4}", 2);

        let numbers: Vec<Vec<usize>> = chunks
            .iter()
            .map(|chunk| chunk.lines.iter().map(|line| line.number).collect())
            .collect();
        assert_eq!(numbers, vec![vec![1, 3], vec![4, 6]]);
        assert_eq!(chunks[0].lines[1].text, "{\"a\":2}");
        assert_eq!(
            chunks.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(self::chunks("\n\n", 2).is_empty());
    }

    #[test]
    fn a_chunk_is_cut_before_it_grows_too_large() {
        let long = format!("\"{}\"", "x".repeat(MAX_CHUNK_BYTES / 2));
        let text = format!("{long}\n{long}\n{long}\n");

        let sizes: Vec<usize> = chunks(&text, 100)
            .iter()
            .map(|chunk| chunk.lines.len())
            .collect();

        assert_eq!(sizes, vec![1, 1, 1]);
    }

    #[test]
    fn a_chunks_key_depends_on_its_lines_its_position_and_the_batch_key_only() {
        let text = "{\"command\":\"a\"}\n{\"command\":\"b\"}\n";
        let first = chunks(text, 1);
        let again = chunks(&format!("\n{text}"), 1);
        let other = chunks("{\"command\":\"a\"}\n{\"command\":\"c\"}\n", 1);

        let key = |chunk: &Chunk| chunk_key(None, chunk);
        assert_eq!(key(&first[0]), key(&again[0]), "blank lines do not count");
        assert_eq!(key(&first[1]), key(&again[1]));
        assert_eq!(key(&first[0]), key(&other[0]));
        assert_ne!(key(&first[1]), key(&other[1]), "another line, another key");
        let moved = Chunk {
            index: 1,
            ..first[0].clone()
        };
        assert_ne!(key(&first[0]), key(&moved), "another position, another key");
        assert_ne!(key(&first[0]), chunk_key(Some("run 2"), &first[0]));
        let key = key(&first[0]);
        assert!(
            key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()),
            "{key}"
        );
    }

    #[test]
    fn bad_lines_are_named_by_their_line_numbers() {
        let chunk = &chunks("{\"command\":\"a\"}\n[1]\n\nnot json\n", 10)[0];

        let bad = parse_chunk("tasks.jsonl", chunk, &Map::new()).expect_err("bad lines");

        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0], "tasks.jsonl:2: not a JSON object");
        assert!(
            bad[1].starts_with("tasks.jsonl:4: not JSON: "),
            "{}",
            bad[1]
        );
    }

    #[test]
    fn a_refused_batch_names_the_lines_of_the_file() {
        let chunk = Chunk {
            index: 3,
            lines: vec![
                Line {
                    number: 1501,
                    text: "{}".into(),
                },
                Line {
                    number: 1503,
                    text: "{}".into(),
                },
            ],
        };
        let problem = Problem {
            title: "Invalid request".into(),
            status: 422,
            detail: "1 field(s) are invalid".into(),
            errors: vec![super::super::api::FieldReason {
                field: "submissions[1].mount_path".into(),
                reason: "must be an absolute path".into(),
            }],
        };

        let told = in_file_terms(problem, "tasks.jsonl", &chunk).to_string();

        assert_eq!(
            told,
            "tasks.jsonl lines 1501-1503 were refused, none of them was stored: 1 field(s) are invalid\n  tasks.jsonl:1503: mount_path: must be an absolute path"
        );
    }
}
