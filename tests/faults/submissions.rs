//! The submissions as the fault tests read them from outside, through the API: every page, and
//! the wait until a run of them has ended.

use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

use crate::support::eventually;

/// The states a submission ends in.
const ENDED: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// Every submission, through all pages; `None` while the service does not answer.
pub async fn list_all(client: &Client, url: &str) -> Option<Vec<Value>> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!("{url}/v1/submissions?limit=1000{cursor}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        all.extend(page["items"].as_array()?.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return Some(all),
        }
    }
}

/// Every submission, once there are `count` of them (any number for `None`) and every one has
/// ended; `None` before, or while the service does not answer.
pub async fn all_ended(client: &Client, url: &str, count: Option<usize>) -> Option<Vec<Value>> {
    let all = list_all(client, url).await?;
    let ended = all
        .iter()
        .all(|s| ENDED.contains(&s["state"].as_str().unwrap_or_default()));
    (ended && count.is_none_or(|count| all.len() == count)).then_some(all)
}

/// Lists the submissions until [`all_ended`] has them, failing the test after `deadline`.
pub async fn until_all_ended(
    client: &Client,
    url: &str,
    count: Option<usize>,
    deadline: Duration,
) -> Vec<Value> {
    let what = match count {
        Some(count) => format!("all {count} submissions to end"),
        None => "every stored submission to end".to_owned(),
    };
    eventually(&what, deadline, || all_ended(client, url, count)).await
}
