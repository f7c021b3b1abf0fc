//! What a verified token's claims say about its holder: the user, from a configurable claim,
//! and the admin and delegate rights, from membership of configurable groups. The same three
//! things one of our own tokens carries, so everything past authentication treats both alike.

use serde_json::Value;

use crate::domain::parse_user_name;

/// Which claims name the user and their groups, and which groups grant which rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The claim whose text is the user name (`preferred_username` by default).
    pub user_claim: String,
    /// The claim listing the user's groups (`groups` by default).
    pub groups_claim: String,
    /// Members of this group see and cancel every user's submissions.
    pub admin_group: Option<String>,
    /// Members of this group may act for other users with `X-On-Behalf-Of`.
    pub delegate_group: Option<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            user_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            admin_group: None,
            delegate_group: None,
        }
    }
}

/// The holder of a verified token, with the rights its groups give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub admin: bool,
    pub delegate: bool,
}

impl ClaimMapping {
    /// The identity `claims` describe, or why they describe none we can use.
    pub fn identity(&self, claims: &Value) -> Result<Identity, String> {
        let name = &self.user_claim;
        let user = match claim(claims, name) {
            Some(Value::String(user)) => parse_user_name(user)
                .map_err(|reason| format!("the token's `{name}` claim (the user) {reason}"))?,
            Some(_) => return Err(format!("the token's `{name}` claim (the user) is not text")),
            None => return Err(format!("the token has no `{name}` claim naming its user")),
        };
        let groups = groups(claim(claims, &self.groups_claim));
        let member = |group: &Option<String>| {
            group
                .as_deref()
                .is_some_and(|group| groups.contains(&group))
        };
        Ok(Identity {
            user,
            admin: member(&self.admin_group),
            delegate: member(&self.delegate_group),
        })
    }
}

/// The claim called `name`, or else the one at the dotted path `name` names
/// (`realm_access.roles`): claim names with dots in them (URLs) are found as they are.
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    name.split('.')
        .try_fold(claims, |value, part| value.get(part))
        .filter(|_| name.contains('.'))
}

/// The group names in a groups claim: a list of texts, or one text; anything else is none.
fn groups(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(group)) => vec![group.as_str()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            admin_group: Some("sh-admins".into()),
            delegate_group: Some("sh-portals".into()),
            ..ClaimMapping::default()
        }
    }

    #[test]
    fn the_user_is_the_preferred_username_by_default() {
        let claims = json!({"sub": "f81d4fae", "preferred_username": "alice"});

        let identity = mapping().identity(&claims).expect("identity");

        assert_eq!(
            identity,
            Identity {
                user: "alice".into(),
                admin: false,
                delegate: false
            }
        );
    }

    #[test]
    fn the_user_claim_can_be_another_one() {
        let mapping = ClaimMapping {
            user_claim: "uid".into(),
            ..mapping()
        };
        let claims = json!({"preferred_username": "alice", "uid": "a.smith"});

        assert_eq!(mapping.identity(&claims).expect("identity").user, "a.smith");
    }

    #[test]
    fn groups_give_admin_and_delegate_rights() {
        let admin = json!({"preferred_username": "root", "groups": ["users", "sh-admins"]});
        let portal = json!({"preferred_username": "portal", "groups": "sh-portals"});
        let neither = json!({"preferred_username": "bob", "groups": ["sh-admins-not"]});

        let admin = mapping().identity(&admin).expect("admin");
        let portal = mapping().identity(&portal).expect("portal");
        let neither = mapping().identity(&neither).expect("neither");

        assert_eq!((admin.admin, admin.delegate), (true, false));
        assert_eq!((portal.admin, portal.delegate), (false, true));
        assert_eq!((neither.admin, neither.delegate), (false, false));
    }

    #[test]
    fn without_configured_groups_nobody_gets_rights() {
        let claims = json!({"preferred_username": "root", "groups": ["sh-admins", "sh-portals"]});

        let identity = ClaimMapping::default().identity(&claims).expect("identity");

        assert_eq!((identity.admin, identity.delegate), (false, false));
    }

    #[test]
    fn nested_and_dotted_claims_are_found() {
        let keycloak = ClaimMapping {
            groups_claim: "realm_access.roles".into(),
            ..mapping()
        };
        let auth0 = ClaimMapping {
            groups_claim: "https://lab.example.org/groups".into(),
            ..mapping()
        };
        let nested =
            json!({"preferred_username": "root", "realm_access": {"roles": ["sh-admins"]}});
        let dotted =
            json!({"preferred_username": "root", "https://lab.example.org/groups": ["sh-admins"]});

        assert!(keycloak.identity(&nested).expect("nested").admin);
        assert!(auth0.identity(&dotted).expect("dotted").admin);
    }

    #[test]
    fn a_missing_or_unusable_user_claim_says_which_claim() {
        for (claims, expected) in [
            (json!({"sub": "x"}), "has no `preferred_username` claim"),
            (json!({"preferred_username": 7}), "is not text"),
            (
                json!({"preferred_username": "has space"}),
                "claim (the user)",
            ),
            (json!({"preferred_username": ""}), "must not be empty"),
        ] {
            let error = mapping().identity(&claims).expect_err("refused");
            assert!(error.contains(expected), "{error}");
            assert!(error.contains("preferred_username"), "{error}");
        }
    }
}
