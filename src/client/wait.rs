//! `wait ID...` and `submit --wait`: poll until every submission has ended, printing each one as
//! it ends (`ID state[: message]`) and, on a terminal, a live line of counts per state.
//!
//! The API has no event stream yet, so this polls every [`POLL_INTERVAL`]. A few submissions are
//! asked for one by one; many are found in the list of active ones (a page per 1,000), and only
//! those that left it are asked for, so waiting for a batch of thousands costs a few requests a
//! round.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::api::{Api, id_segment};
use super::error::ClientError;
use super::model::{self, Page, Submission};
use super::outcome::Outcome;
use super::terminal;
use crate::domain::{State, SubmissionId};

/// How often the API is asked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Up to this many unfinished submissions are asked for one by one.
const ASKED_ONE_BY_ONE: usize = 50;
const CONCURRENT_GETS: usize = 8;

/// `queued 2, pending 1, running 3, succeeded 4, failed 1, cancelled 0`.
pub fn summary<'a>(states: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unknown = 0;
    for state in states {
        match State::ALL.iter().find(|known| known.as_str() == state) {
            Some(known) => *counts.entry(known.as_str()).or_default() += 1,
            None => unknown += 1,
        }
    }
    let mut parts: Vec<String> = State::ALL
        .iter()
        .map(|state| {
            let count = counts.get(state.as_str()).copied().unwrap_or(0);
            format!("{state} {count}")
        })
        .collect();
    if unknown > 0 {
        parts.push(format!("other {unknown}"));
    }
    parts.join(", ")
}

/// Success only if every one succeeded.
pub fn outcome<'a>(ended: impl IntoIterator<Item = &'a Submission>) -> Outcome {
    let all_succeeded = ended
        .into_iter()
        .all(|submission| submission.known_state() == Some(State::Succeeded));
    if all_succeeded {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    }
}

/// The line printed when a submission ends.
pub fn ended_line(submission: &Submission) -> String {
    match submission
        .message
        .as_deref()
        .filter(|message| !message.is_empty())
    {
        Some(message) if submission.known_state() != Some(State::Succeeded) => {
            format!("{} {}: {message}", submission.id, submission.state)
        }
        _ => format!("{} {}", submission.id, submission.state),
    }
}

/// Waits for `ids`; `known` are submissions already read (a submit's answer), saving a request.
pub async fn wait_for(
    api: &Api,
    ids: &[String],
    known: Vec<Submission>,
    timeout: Option<Duration>,
) -> Result<Outcome, ClientError> {
    let started = Instant::now();
    let mut latest: BTreeMap<String, Option<Submission>> =
        ids.iter().map(|id| (normalized(id), None)).collect();
    for submission in known {
        latest.insert(normalized(&submission.id), Some(submission));
    }
    let live = terminal::live_stderr().then(|| {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut printed: BTreeSet<String> = BTreeSet::new();
    let mut first_round = true;
    let result = loop {
        let unfinished: Vec<String> = latest
            .iter()
            .filter(|(_, submission)| !submission.as_ref().is_some_and(Submission::is_final))
            .map(|(id, _)| id.clone())
            .collect();
        // What was read with the submit is current: ask only from the second round on.
        let all_read = unfinished
            .iter()
            .all(|id| latest.get(id).is_some_and(Option::is_some));
        let asked = if first_round && all_read {
            None
        } else {
            Some(poll(api, &unfinished).await)
        };
        first_round = false;
        match asked {
            Some(Ok(found)) => {
                for submission in found {
                    latest.insert(normalized(&submission.id), Some(submission));
                }
            }
            Some(Err(error)) => break Err(error),
            None => {}
        }
        for (id, submission) in &latest {
            if let Some(submission) = submission
                && submission.is_final()
                && !printed.contains(id)
            {
                printed.insert(id.clone());
                let line = ended_line(submission);
                match &live {
                    Some(bar) => bar.suspend(|| terminal::print_line(&line)),
                    None => terminal::print_line(&line),
                }?;
            }
        }
        let states = || {
            latest
                .values()
                .map(|submission| submission.as_ref().map_or("queued", |s| s.state.as_str()))
        };
        if let Some(bar) = &live {
            bar.set_message(summary(states()));
        }
        if printed.len() == latest.len() {
            let ended: Vec<&Submission> = latest.values().flatten().collect();
            eprintln_summary(&live, &summary(states()));
            break Ok(outcome(ended));
        }
        let remaining = timeout.map(|timeout| timeout.saturating_sub(started.elapsed()));
        if remaining == Some(Duration::ZERO) {
            eprintln_summary(&live, &summary(states()));
            let waiting: Vec<String> = latest
                .iter()
                .filter(|(id, _)| !printed.contains(*id))
                .map(|(id, submission)| {
                    let state = submission.as_ref().map_or("unknown", |s| s.state.as_str());
                    format!("{id} {state}")
                })
                .collect();
            let waited = jiff::SignedDuration::try_from(started.elapsed()).unwrap_or_default();
            eprintln!(
                "timed out after {}; not ended yet: {}",
                crate::duration::human_duration(waited),
                waiting.join(", ")
            );
            break Ok(Outcome::TimedOut);
        }
        let pause = remaining.map_or(POLL_INTERVAL, |remaining| remaining.min(POLL_INTERVAL));
        tokio::time::sleep(pause).await;
    };
    if let Some(bar) = live {
        bar.finish_and_clear();
    }
    result
}

fn eprintln_summary(live: &Option<ProgressBar>, summary: &str) {
    match live {
        Some(bar) => bar.suspend(|| eprintln!("{summary}")),
        None => eprintln!("{summary}"),
    }
}

/// Ids as the server writes them (hyphenated, lowercase), so an id typed as `submission/ID`, in
/// capitals or without hyphens matches the server's answers.
fn normalized(id: &str) -> String {
    let id = id.strip_prefix("submission/").unwrap_or(id);
    SubmissionId::from_str(id).map_or_else(|_| id.to_owned(), |id| id.to_string())
}

/// The current record of each of `ids`.
async fn poll(api: &Api, ids: &[String]) -> Result<Vec<Submission>, ClientError> {
    if ids.len() <= ASKED_ONE_BY_ONE {
        return get_each(api, ids).await;
    }
    let active = list_active(api).await?;
    let mut found = Vec::with_capacity(ids.len());
    let mut left = Vec::new();
    for id in ids {
        match active.get(id) {
            Some(submission) => found.push(submission.clone()),
            None => left.push(id.clone()),
        }
    }
    found.extend(get_each(api, &left).await?);
    Ok(found)
}

async fn get_each(api: &Api, ids: &[String]) -> Result<Vec<Submission>, ClientError> {
    let answers: Vec<Result<Submission, ClientError>> = futures::stream::iter(ids)
        .map(|id| async move {
            api.get::<Submission>(&format!("v1/submissions/{}", id_segment(id)), &[])
                .await
        })
        .buffered(CONCURRENT_GETS)
        .collect()
        .await;
    answers.into_iter().collect()
}

/// Every active submission the token may see, by id.
async fn list_active(api: &Api) -> Result<HashMap<String, Submission>, ClientError> {
    let mut active = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("state", "queued,pending,running".to_owned()),
            ("limit", "1000".to_owned()),
        ];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let page: Page = api.get("v1/submissions", &query).await?;
        for item in &page.items {
            let submission: Submission = model::read(item)?;
            active.insert(submission.id.clone(), submission);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(active),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(state: &str, message: Option<&str>) -> Submission {
        Submission {
            id: "0193".into(),
            state: state.into(),
            message: message.map(str::to_owned),
            ..Submission::default()
        }
    }

    #[test]
    fn the_summary_counts_every_state_in_order() {
        assert_eq!(
            summary(["running", "succeeded", "running", "failed", "weird"]),
            "waiting 0, queued 0, pending 0, running 2, succeeded 1, failed 1, cancelled 0, other 1"
        );
    }

    #[test]
    fn only_all_succeeded_is_a_success() {
        let succeeded = submission("succeeded", None);
        let failed = submission("failed", Some("BackoffLimitExceeded"));
        let cancelled = submission("cancelled", None);

        assert_eq!(outcome([&succeeded, &succeeded]), Outcome::Success);
        assert_eq!(outcome([&succeeded, &failed]), Outcome::SomeFailed);
        assert_eq!(outcome([&cancelled]), Outcome::SomeFailed);
    }

    #[test]
    fn an_ended_line_says_why_unless_it_succeeded() {
        assert_eq!(
            ended_line(&submission("failed", Some("BackoffLimitExceeded: exit 3"))),
            "0193 failed: BackoffLimitExceeded: exit 3"
        );
        assert_eq!(
            ended_line(&submission("succeeded", Some("done"))),
            "0193 succeeded"
        );
    }

    #[test]
    fn ids_match_however_they_were_typed() {
        let id = "01935f2e-8c4a-7b3d-9e2f-123456789abc";
        for typed in [
            id.to_owned(),
            format!("submission/{id}"),
            id.to_uppercase(),
            id.replace('-', ""),
        ] {
            assert_eq!(normalized(&typed), id, "{typed}");
        }
        assert_eq!(normalized("not-an-id"), "not-an-id");
    }
}
