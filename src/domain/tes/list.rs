//! What a task list asks for: filters, the page and the view, read from the query string.

use super::document::{TesState, View};
use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::submission_id::SubmissionId;

pub const DEFAULT_PAGE_SIZE: u32 = 256;
pub const MAX_PAGE_SIZE: u32 = 2048;

/// The query parameters a task list knows.
pub const LIST_PARAMETERS: [&str; 7] = [
    "name_prefix",
    "state",
    "tag_key",
    "tag_value",
    "page_size",
    "page_token",
    "view",
];

/// A task list's filters and page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Literal and case-sensitive.
    pub name_prefix: Option<String>,
    pub state: Option<TesState>,
    /// Each key with the value it must have, or any value (`None`).
    pub tags: Vec<(String, Option<String>)>,
    pub page_size: u32,
    /// Tasks older than this one (the last of the previous page).
    pub after: Option<SubmissionId>,
    pub view: View,
}

/// Reads a list's query `pairs` (repeated keys kept in order), naming every bad parameter.
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let mut query = ListQuery {
        page_size: DEFAULT_PAGE_SIZE,
        ..ListQuery::default()
    };
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (key, value) in pairs {
        let repeated = |errors: &mut FieldErrors, set: bool| {
            if set {
                errors.refuse(key, "must be given at most once");
            }
        };
        match key.as_str() {
            "name_prefix" => {
                repeated(&mut errors, query.name_prefix.is_some());
                query.name_prefix = Some(value.clone());
            }
            "state" => {
                repeated(&mut errors, query.state.is_some());
                match TesState::named(value) {
                    Some(state) => query.state = Some(state),
                    None => errors.refuse(
                        key,
                        "must be a TES state such as QUEUED, RUNNING or COMPLETE",
                    ),
                }
            }
            "tag_key" => keys.push(value.clone()),
            "tag_value" => values.push(value.clone()),
            "page_size" => match value.parse::<u32>() {
                // Larger pages are answered with the largest.
                Ok(size) if size >= 1 => query.page_size = size.min(MAX_PAGE_SIZE),
                _ => errors.refuse(
                    key,
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                ),
            },
            "page_token" => match value.parse::<SubmissionId>() {
                Ok(id) => query.after = Some(id),
                Err(_) => errors.refuse(key, "is not a page token this service returned"),
            },
            "view" => match View::named(value) {
                Some(view) => query.view = view,
                None => errors.refuse(key, "must be MINIMAL, BASIC or FULL"),
            },
            _ => errors.refuse(
                key,
                format!(
                    "is not a known query parameter; expected one of {}",
                    LIST_PARAMETERS.join(", ")
                ),
            ),
        }
    }
    if values.len() > keys.len() {
        errors.refuse("tag_value", "must not be given more often than tag_key");
    }
    let mut values = values.into_iter();
    query.tags = keys
        .into_iter()
        .map(|key| (key, values.next().filter(|value| !value.is_empty())))
        .collect();
    errors.or(query)
}

/// The token that asks for the page after the one ending with `last`.
pub fn page_token(last: SubmissionId) -> String {
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_empty_query_is_the_first_minimal_page_of_256() {
        let query = parse_list_query(&[]).expect("valid");

        assert_eq!(query.page_size, 256);
        assert_eq!(query.view, View::Minimal);
        assert_eq!(query.after, None);
    }

    #[test]
    fn tag_keys_and_values_pair_in_order_and_keys_beyond_the_values_match_any_value() {
        let query = parse_list_query(&pairs(&[
            ("tag_key", "foo"),
            ("tag_key", "lorem"),
            ("tag_key", "baz"),
            ("tag_value", "bar"),
            ("tag_value", ""),
        ]))
        .expect("valid");

        assert_eq!(
            query.tags,
            [
                ("foo".to_string(), Some("bar".to_string())),
                ("lorem".to_string(), None),
                ("baz".to_string(), None)
            ]
        );
    }

    #[test]
    fn more_tag_values_than_keys_are_refused() {
        let errors = parse_list_query(&pairs(&[("tag_value", "x")])).expect_err("refused");

        assert_eq!(errors[0].field, "tag_value");
    }

    #[test]
    fn page_sizes_above_the_largest_get_the_largest_and_below_one_are_refused() {
        assert_eq!(
            parse_list_query(&pairs(&[("page_size", "5000")]))
                .expect("valid")
                .page_size,
            2048
        );
        for bad in ["0", "-1", "x", ""] {
            let errors = parse_list_query(&pairs(&[("page_size", bad)])).expect_err("refused");
            assert_eq!(errors[0].field, "page_size", "{bad:?}");
        }
    }

    #[test]
    fn a_page_token_round_trips_and_a_foreign_one_is_refused() {
        let id = SubmissionId::new();

        let query = parse_list_query(&pairs(&[("page_token", &page_token(id))])).expect("valid");
        let errors = parse_list_query(&pairs(&[("page_token", "abc")])).expect_err("refused");

        assert_eq!(query.after, Some(id));
        assert_eq!(errors[0].field, "page_token");
    }

    #[test]
    fn unknown_parameters_views_and_states_are_named() {
        let errors = parse_list_query(&pairs(&[
            ("project", "x"),
            ("view", "full"),
            ("state", "DONE"),
        ]))
        .expect_err("refused");

        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["project", "view", "state"]);
    }
}
