//! The client as a user runs it: the real binary, in a process of its own, with a home of its
//! own (so no config file or variable of this machine leaks in), talking to a service on
//! 127.0.0.1.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::TestApp;

/// The client binary, pointed at one service with one token.
pub struct Client {
    pub server: String,
    pub token: String,
    pub home: tempfile::TempDir,
}

/// How a run of the client ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing everything the client printed when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }

    /// The lines of standard output.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl Client {
    /// A client of `app`, with its token in the environment (`SUBMISSION_HELPER_URL`/`_TOKEN`).
    pub fn of(app: &TestApp) -> Self {
        Self::with(&app.address, &app.token)
    }

    pub fn with(server: &str, token: &str) -> Self {
        Client {
            server: server.to_owned(),
            token: token.to_owned(),
            home: tempfile::tempdir().expect("home directory"),
        }
    }

    /// The config directory the client reads (`XDG_CONFIG_HOME`).
    pub fn config_home(&self) -> std::path::PathBuf {
        self.home.path().join("config")
    }

    /// The command with nothing of this machine's environment but a home of its own.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_submission-helper"));
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// The command, with the server and token in the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bare(args);
        command
            .env("SUBMISSION_HELPER_URL", &self.server)
            .env("SUBMISSION_HELPER_TOKEN", &self.token);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args)).await
    }

    /// Runs with `input` on standard input.
    pub async fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        let mut command = self.command(args);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("start the client");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
        collect(child).await
    }

    /// The command run on a terminal of its own (a pseudo-terminal from util-linux's `script`),
    /// with the server and token in the environment: standard input is typed at it, and
    /// everything it writes, standard error included, comes out on standard output.
    pub fn on_a_terminal(&self, args: &[&str]) -> Command {
        let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_submission-helper"))
            .chain(args.iter().copied())
            .map(|word| format!("'{}'", word.replace('\'', "'\\''")))
            .collect();
        let mut command = Command::new("script");
        command
            .args([
                "--quiet",
                "--return",
                "--command",
                &quoted.join(" "),
                "/dev/null",
            ])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TERM", "xterm")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("SUBMISSION_HELPER_URL", &self.server)
            .env("SUBMISSION_HELPER_TOKEN", &self.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs the client on a terminal and types `input` once it shows `prompt`, as a person does
    /// (a prompt for a secret discards what was typed before it).
    pub async fn answer_on_a_terminal(&self, args: &[&str], prompt: &str, input: &str) -> Run {
        use tokio::io::AsyncReadExt;
        let mut child = self.on_a_terminal(args).spawn().expect("start script");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut shown = Vec::new();
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            let mut buffer = [0u8; 1024];
            while !String::from_utf8_lossy(&shown).contains(prompt) {
                match stdout.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => shown.extend_from_slice(&buffer[..read]),
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&shown).into_owned();
        assert!(
            waited.is_ok() && text.contains(prompt),
            "no prompt {prompt:?}: {text:?}"
        );
        let rest = tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest).await;
            rest
        });
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("type at the terminal");
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .unwrap_or_else(|_| panic!("the client did not end within a minute: {text:?}"))
            .expect("wait for script");
        drop(stdin);
        let rest = rest.await.expect("read the terminal");
        Run {
            code: status.code(),
            stdout: format!("{text}{}", String::from_utf8_lossy(&rest)),
            stderr: String::new(),
        }
    }

    /// Starts the client and hands back its running process, its output read line by line.
    pub fn spawn(&self, args: &[&str]) -> Running {
        Running::start(self.command(args))
    }
}

/// How long a client run may take before the test gives up on it: beyond the longest
/// `--timeout` a test gives `wait` (10 minutes), so a slow machine shows as the client's own
/// timeout and exit code, never as the harness cutting it short.
const RUN_LIMIT: Duration = Duration::from_secs(11 * 60);

/// Runs `command` to its end (at most [`RUN_LIMIT`]).
pub async fn finish(mut command: Command) -> Run {
    collect(command.spawn().expect("start the client")).await
}

async fn collect(child: Child) -> Run {
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("the client ended within its time")
        .expect("the client's output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A client still running, whose standard output is read as it is written.
pub struct Running {
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Running {
    pub fn start(mut command: Command) -> Self {
        let mut child = command.spawn().expect("start the client");
        let stdout = child.stdout.take().expect("stdout");
        Running {
            child,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `wanted`, failing the test after `deadline`, or when the
    /// output ends first, with every line seen.
    pub async fn until(
        &mut self,
        what: &str,
        deadline: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let left = deadline.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Ok(Ok(None)) => panic!("the output ended before {what}; lines: {:#?}", self.seen),
                Ok(Err(error)) => panic!("reading the output: {error}"),
                Err(_) => panic!(
                    "gave up after {deadline:?} waiting for {what}; lines: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the end (at most `deadline`) and returns the exit code, the rest of the output
    /// read into `seen`.
    pub async fn end(&mut self, deadline: Duration) -> Option<i32> {
        let rest = async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                self.seen.push(line);
            }
            self.child.wait().await.expect("wait for the client")
        };
        tokio::time::timeout(deadline, rest)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the client did not end within {deadline:?}; lines: {:#?}",
                    self.seen
                )
            })
            .code()
    }

    /// Stops it as an interruption would, without a chance to clean up (SIGKILL).
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the client");
    }
}
