//! `rerun ID...` and `rerun -l K=V [--failed|--cancelled]`: run failed or cancelled submissions
//! again under their ids, optionally with more memory, other CPUs, time or image.
//!
//! A rerun of everything that matches asks first on a terminal, as `cancel --all` does, and
//! says how many run again and how many come back with them.

use serde_json::{Map, Value, json};

use super::api::Api;
use super::args::RerunArgs;
use super::each;
use super::error::ClientError;
use super::model::{self, Page, Reran, Submission};
use super::outcome::Outcome;
use super::terminal;

/// What changes in the new run, as the API names it.
pub fn changes(args: &RerunArgs) -> Map<String, Value> {
    let mut changes = Map::new();
    if let Some(memory) = &args.memory {
        changes.insert("memory".into(), json!(memory));
    }
    if let Some(cpus) = &args.cpus {
        changes.insert("cpus".into(), json!(cpus));
    }
    if let Some(time) = args.time {
        changes.insert("time".into(), json!(time));
    }
    if let Some(image) = &args.image {
        changes.insert("image".into(), json!(image));
    }
    changes
}

/// The body of `POST /v1/submissions/rerun`.
pub fn rerun_filter(args: &RerunArgs) -> Value {
    let mut filter = changes(args);
    let labels: Map<String, Value> = args
        .selector
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    filter.insert("labels".into(), Value::Object(labels));
    let mut states = Vec::new();
    if args.failed {
        states.push("failed");
    }
    if args.cancelled {
        states.push("cancelled");
    }
    if !states.is_empty() {
        filter.insert("state".into(), json!(states));
    }
    Value::Object(filter)
}

/// The states a rerun by label takes.
fn states(args: &RerunArgs) -> &'static str {
    match (args.failed, args.cancelled) {
        (true, false) => "failed",
        (false, true) => "cancelled",
        _ => "failed or cancelled",
    }
}

/// What is about to run again, in words: `count` of them.
pub fn question(args: &RerunArgs, count: usize) -> String {
    let labels: Vec<String> = args
        .selector
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    format!(
        "Rerun the {count} {} submission(s) of yours labelled {}?",
        states(args),
        labels.join(", ")
    )
}

/// How many of the caller's submissions a rerun by label matches, counted through every page.
async fn count_matching(api: &Api, args: &RerunArgs) -> Result<usize, ClientError> {
    let state = match (args.failed, args.cancelled) {
        (true, false) => "failed",
        (false, true) => "cancelled",
        _ => "failed,cancelled",
    };
    let mut query = vec![("state", state.to_owned()), ("limit", "1000".to_owned())];
    for (key, value) in &args.selector {
        query.push(("label", format!("{key}={value}")));
    }
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut page_query = query.clone();
        if let Some(cursor) = &cursor {
            page_query.push(("cursor", cursor.clone()));
        }
        let page: Page = api.get("v1/submissions", &page_query).await?;
        count += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}

pub async fn run(api: &Api, args: &RerunArgs) -> Result<Outcome, ClientError> {
    if !args.selector.is_empty() {
        return rerun_matching(api, args).await;
    }
    let body = Value::Object(changes(args));
    each::post_each(api, &args.ids, "rerun", "rerun", &body, |answer| {
        let submission: Submission = model::read(answer)?;
        let also = match answer["also_rerun"].as_array().map_or(0, Vec::len) {
            0 => String::new(),
            n => format!(", {n} waiting for it again"),
        };
        Ok(format!("{} rerun{also}", submission.id))
    })
    .await
}

async fn rerun_matching(api: &Api, args: &RerunArgs) -> Result<Outcome, ClientError> {
    let count = count_matching(api, args).await?;
    if count == 0 {
        eprintln!(
            "no {} submission of yours has these labels; nothing rerun",
            states(args)
        );
        return Ok(Outcome::Success);
    }
    let question = question(args, count);
    if !terminal::meant(&question, args.yes)? {
        eprintln!("nothing rerun");
        return Ok(Outcome::Success);
    }
    let posted = api
        .post::<Reran>("v1/submissions/rerun", &rerun_filter(args), None)
        .await?;
    let reran = posted.body;
    for item in &reran.rerun {
        let submission: Submission = model::read(item)?;
        terminal::print_line(&format!("{} rerun", submission.id))?;
    }
    for item in &reran.also_rerun {
        let submission: Submission = model::read(item)?;
        terminal::print_line(&format!("{} waiting again", submission.id))?;
    }
    for left in &reran.not_rerun {
        eprintln!("not rerun: {}: {}", left.id, left.reason);
    }
    eprintln!(
        "{} submission(s) rerun, {} waiting for them again, {} not rerun",
        reran.rerun.len(),
        reran.also_rerun.len(),
        reran.not_rerun.len()
    );
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        rerun: RerunArgs,
    }

    fn args(line: &[&str]) -> RerunArgs {
        let words = std::iter::once("rerun").chain(line.iter().copied());
        Line::try_parse_from(words).expect("parses").rerun
    }

    #[test]
    fn a_campaigns_failures_rerun_with_more_memory_name_the_labels_the_state_and_the_memory() {
        let args = args(&["-l", "campaign=mc16e", "--failed", "--memory", "8000M"]);

        assert_eq!(
            rerun_filter(&args),
            json!({"labels": {"campaign": "mc16e"}, "state": ["failed"], "memory": "8000M"})
        );
        assert_eq!(
            question(&args, 3),
            "Rerun the 3 failed submission(s) of yours labelled campaign=mc16e?"
        );
    }

    #[test]
    fn a_rerun_by_id_sends_only_what_changes() {
        let args = args(&["0193", "--time", "90"]);

        assert_eq!(args.ids, ["0193"]);
        assert_eq!(Value::Object(changes(&args)), json!({"time": 90}));
    }
}
