//! Who is asking: users, the tokens that identify them, and the caller of one request.

use super::kube_rules;

/// A user's name. It is also set as a label on the user's Jobs (`submission-helper.io/owner`),
/// so it follows the rules of a label value, and must not be empty.
pub fn parse_user_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    kube_rules::label_value(name)?;
    Ok(name.to_owned())
}

/// The caller of one request, after its token was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Whose submissions these are: the token's user, or the user a delegate acts for.
    pub user: String,
    /// The token's user (a delegate such as a portal, or the user themself).
    pub submitted_by: String,
    /// Admins see and cancel every user's submissions.
    pub admin: bool,
    /// The token's own limit of the user's active Jobs, if it has one.
    pub max_concurrent: Option<i64>,
    /// The id of the token the request was sent with (none for the service's own calls).
    pub token: Option<String>,
}

impl Caller {
    /// A user acting for themself, without admin rights.
    pub fn user(name: &str) -> Self {
        Caller {
            user: name.to_owned(),
            submitted_by: name.to_owned(),
            admin: false,
            max_concurrent: None,
            token: None,
        }
    }

    /// Whether this caller may see and act on a submission owned by `owner`.
    pub fn may_access(&self, owner: &str) -> bool {
        self.admin || self.user == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_label_values() {
        assert!(parse_user_name("alice").is_ok());
        assert!(parse_user_name("a.b_c-1").is_ok());
        for bad in ["", "has space", "-x", &"u".repeat(64)] {
            assert!(parse_user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_owners_and_admins_may_access() {
        let alice = Caller {
            user: "alice".into(),
            submitted_by: "alice".into(),
            admin: false,
            max_concurrent: None,
            token: None,
        };
        let admin = Caller {
            admin: true,
            ..alice.clone()
        };

        assert!(alice.may_access("alice"));
        assert!(!alice.may_access("bob"));
        assert!(admin.may_access("bob"));
    }
}
