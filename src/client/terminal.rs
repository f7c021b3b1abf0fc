//! The client's side of the terminal: whether one is there (live lines, progress bars and
//! questions only on a terminal), printing to standard output, and asking for a yes.

use std::io::{IsTerminal, Write};

use super::error::ClientError;

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Whether standard error is a terminal that can redraw a line (a progress bar, a live line):
/// not a file or a pipe, nor a terminal whose `TERM` is unset or `dumb`, which get plain lines.
pub fn live_stderr() -> bool {
    std::io::stderr().is_terminal() && !console::is_dumb()
}

/// Writes `text` to standard output as it is (a reader that went away, as `| head` does, ends
/// the command quietly: see [`super::command::run`]).
pub fn print(text: &str) -> Result<(), ClientError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| ClientError::Io {
            what: "writing to standard output".into(),
            source,
        })
}

/// Writes one line to standard output.
pub fn print_line(line: &str) -> Result<(), ClientError> {
    print(&format!("{line}\n"))
}

/// Whether an answer to a yes/no question is a yes (`y`, `yes`, any case); anything else,
/// the empty answer included, is a no.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

/// Whether a change of everything that matches was meant: `--yes` says so; otherwise the
/// question is asked on a terminal, and without one the command is refused naming `--yes`.
pub fn meant(question: &str, yes: bool) -> Result<bool, ClientError> {
    if yes {
        return Ok(true);
    }
    if !stdin_is_terminal() {
        return Err(ClientError::Usage(format!(
            "{question} Standard input is not a terminal to ask on: add --yes to mean it"
        )));
    }
    confirm(question)
}

/// Asks `question` on the terminal and reads the answer.
pub fn confirm(question: &str) -> Result<bool, ClientError> {
    let terminal = console::Term::stderr();
    let io = |source| ClientError::Io {
        what: "reading the answer".into(),
        source,
    };
    terminal
        .write_str(&format!("{question} [y/N] "))
        .map_err(io)?;
    let answer = terminal.read_line().map_err(io)?;
    Ok(is_yes(&answer))
}

/// Reads a secret typed on the terminal without showing it.
///
/// Echo is turned off, and what was typed before discarded, *before* the prompt shows: so what
/// is typed once the prompt is there is never shown, however quickly it comes.
pub fn read_secret(prompt: &str) -> Result<String, ClientError> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::BufRead;

    let io = |source: std::io::Error| ClientError::Io {
        what: "reading from the terminal".into(),
        source,
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(io)?;
    let original = tcgetattr(&tty).map_err(|errno| io(errno.into()))?;
    let mut quiet = original.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(|errno| io(errno.into()))?;
    let mut answer = String::new();
    let read = (&tty)
        .write_all(prompt.as_bytes())
        .and_then(|()| std::io::BufReader::new(&tty).read_line(&mut answer));
    let restored = tcsetattr(&tty, OptionalActions::Now, &original);
    read.map_err(io)?;
    restored.map_err(|errno| io(errno.into()))?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_is_a_yes() {
        for answer in ["y", "Y", "yes", " YES\n"] {
            assert!(is_yes(answer), "{answer:?}");
        }
        for answer in ["", "n", "no", "yep", "sure"] {
            assert!(!is_yes(answer), "{answer:?}");
        }
    }
}
