//! `cancel ID...` and `cancel --all [-l K=V]...`, the service's `kubectl delete jobs -l`.
//!
//! A cancel of everything that matches asks first on a terminal, and without a terminal to ask
//! on is refused unless `--yes` says it was meant.

use serde_json::{Map, Value, json};

use super::api::Api;
use super::args::CancelArgs;
use super::each;
use super::error::ClientError;
use super::model::{self, Cancelled, Submission};
use super::outcome::Outcome;
use super::terminal;

/// The body of `POST /v1/submissions/cancel`: the labels, or every active state when none are
/// given (the API wants at least one criterion).
pub fn cancel_filter(labels: &[(String, String)], all_users: bool) -> Value {
    let mut filter = Map::new();
    if labels.is_empty() {
        filter.insert("state".into(), json!(["queued", "pending", "running"]));
    } else {
        let labels: Map<String, Value> = labels
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        filter.insert("labels".into(), Value::Object(labels));
    }
    if all_users {
        filter.insert("all_users".into(), Value::Bool(true));
    }
    Value::Object(filter)
}

/// What is about to be cancelled, in words.
pub fn question(labels: &[(String, String)], all_users: bool) -> String {
    let whose = if all_users {
        "of every user"
    } else {
        "of yours"
    };
    if labels.is_empty() {
        format!("Cancel every active submission {whose}?")
    } else {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "Cancel every active submission {whose} labelled {}?",
            labels.join(", ")
        )
    }
}

pub async fn run(api: &Api, args: &CancelArgs) -> Result<Outcome, ClientError> {
    if args.all {
        return cancel_matching(api, args).await;
    }
    each::post_each(
        api,
        &args.ids,
        "cancel",
        "cancelled",
        &json!({}),
        |answer| {
            let submission: Submission = model::read(answer)?;
            Ok(format!("{} cancelled", submission.id))
        },
    )
    .await
}

async fn cancel_matching(api: &Api, args: &CancelArgs) -> Result<Outcome, ClientError> {
    let question = question(&args.selector, args.all_users);
    if !terminal::meant(&question, args.yes)? {
        eprintln!("nothing cancelled");
        return Ok(Outcome::Success);
    }
    let body = cancel_filter(&args.selector, args.all_users);
    let posted = api
        .post::<Cancelled>("v1/submissions/cancel", &body, None)
        .await?;
    for item in &posted.body.cancelled {
        let submission: Submission = model::read(item)?;
        terminal::print_line(&format!("{} cancelled", submission.id))?;
    }
    eprintln!("{} submission(s) cancelled", posted.body.cancelled.len());
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_of_everything_names_the_active_states_and_one_by_labels_the_labels() {
        let labels = vec![("campaign".to_owned(), "mc16e".to_owned())];

        assert_eq!(
            cancel_filter(&[], false),
            json!({"state": ["queued", "pending", "running"]})
        );
        assert_eq!(
            cancel_filter(&labels, true),
            json!({"labels": {"campaign": "mc16e"}, "all_users": true})
        );
        assert_eq!(
            question(&labels, false),
            "Cancel every active submission of yours labelled campaign=mc16e?"
        );
    }
}
