//! The limits of concurrent Jobs a submission counts against (its user's, its batch group's),
//! checked the same way by the claims and by the opening of Kueue's gates.

use std::collections::HashMap;

use crate::domain::Submission;

/// Which of a submission's limits has no room: its user's, or its batch group's.
pub(super) enum Full {
    User(String),
    Group(String),
}

/// Counts `submission` in its user's and batch group's active Jobs (`users`, `groups`) if both
/// limits have room for it; otherwise says which is full and counts nothing.
pub(super) fn take_place(
    submission: &Submission,
    user_default: Option<i64>,
    users: &mut HashMap<String, i64>,
    groups: &mut HashMap<String, i64>,
) -> std::result::Result<(), Full> {
    let user_limit = submission.limits.user.or(user_default);
    if let Some(limit) = user_limit
        && users.get(&submission.owner).copied().unwrap_or(0) >= limit
    {
        return Err(Full::User(submission.owner.clone()));
    }
    if let Some((group, limit)) = &submission.limits.group
        && groups.get(group).copied().unwrap_or(0) >= *limit
    {
        return Err(Full::Group(group.clone()));
    }
    if user_limit.is_some() {
        *users.entry(submission.owner.clone()).or_insert(0) += 1;
    }
    if let Some((group, _)) = &submission.limits.group {
        *groups.entry(group.clone()).or_insert(0) += 1;
    }
    Ok(())
}
