//! A verb applied to submissions one id at a time (`cancel ID...`, `rerun ID...`): one that is
//! refused (unknown, or in a state the verb does not apply to) is said and does not stop the
//! others; the exit code says whether any was.

use serde_json::Value;

use super::api::{Api, id_segment};
use super::error::ClientError;
use super::outcome::Outcome;
use super::terminal;

/// POSTs `body` to `v1/submissions/{id}/{verb}` for each of `ids`, printing what `said` makes
/// of each answer; `done` is the verb's past participle, for the count of those refused.
pub async fn post_each(
    api: &Api,
    ids: &[String],
    verb: &str,
    done: &str,
    body: &Value,
    said: impl Fn(&Value) -> Result<String, ClientError>,
) -> Result<Outcome, ClientError> {
    let mut failures = 0;
    for id in ids {
        let path = format!("v1/submissions/{}/{verb}", id_segment(id));
        match api.post::<Value>(&path, body, None).await {
            Ok(posted) => terminal::print_line(&said(&posted.body)?)?,
            Err(error @ ClientError::Refused(_)) => {
                eprintln!("error: {id}: {error}");
                failures += 1;
            }
            Err(error) => return Err(error),
        }
    }
    match failures {
        0 => Ok(Outcome::Success),
        count => Err(ClientError::Usage(format!(
            "{count} of {} could not be {done}",
            ids.len()
        ))),
    }
}
