//! The filters a listing and an event stream both take from their query: `state` and `label`.

use std::str::FromStr;

use super::error::{ApiError, ApiResult};
use super::extract::QueryPairs;
use crate::domain::{State, kube_rules};

/// The states of the `state` parameters (repeated, or separated with commas).
pub fn states_asked(query: &QueryPairs) -> ApiResult<Vec<State>> {
    query
        .all("state")
        .flat_map(|value| value.split(','))
        .map(|text| {
            State::from_str(text.trim())
                .map_err(|error| ApiError::bad_request("state", error.to_string()))
        })
        .collect()
}

/// The labels of the `label` parameters (`key=value`, repeated to require several).
pub fn labels_asked(query: &QueryPairs) -> ApiResult<Vec<(String, String)>> {
    query
        .all("label")
        .map(|text| {
            let Some((key, value)) = text.split_once('=') else {
                return Err(ApiError::bad_request("label", "must be key=value"));
            };
            kube_rules::label_key(key)
                .map_err(|reason| ApiError::bad_request("label", format!("key {reason}")))?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}
