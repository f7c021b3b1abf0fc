//! Sign-in with an OpenID Connect issuer (`--oidc-*`), read into the verifier's settings.

use clap::Args;
use url::Url;

use super::values::{OrNone, named, or_none, text};
use crate::http::oidc::keys::{self, KeySettings};
use crate::http::oidc::{ClaimMapping, Settings};

#[derive(Debug, Clone, Args)]
pub struct OidcArgs {
    /// Also accept OpenID Connect access tokens (JWTs) issued by this issuer, as its tokens'
    /// `iss` names it: `https://keycloak.example.org/realms/lab`. Plain http only for an
    /// issuer on loopback. Needs --oidc-audience.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_ISSUER",
        value_parser = named(or_none(secure_url)),
        default_value = "",
        hide_default_value = true
    )]
    pub oidc_issuer: OrNone<Url>,
    /// The audience (`aud`) the issuer's tokens must name: the service's client id there.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_AUDIENCE",
        value_parser = named(or_none(text)),
        default_value = "",
        hide_default_value = true
    )]
    pub oidc_audience: OrNone<String>,
    /// The claim naming the user (a dotted path reaches nested claims).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_USER_CLAIM",
        default_value = ClaimMapping::default().user_claim
    )]
    pub oidc_user_claim: String,
    /// The claim listing the user's groups (a dotted path reaches nested claims:
    /// `realm_access.roles`).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_GROUPS_CLAIM",
        default_value = ClaimMapping::default().groups_claim
    )]
    pub oidc_groups_claim: String,
    /// Members of this group are admins (as tokens created with --admin).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_ADMIN_GROUP",
        value_parser = named(or_none(text)),
        default_value = "",
        hide_default_value = true
    )]
    pub oidc_admin_group: OrNone<String>,
    /// Members of this group are delegates (as tokens created with --delegate).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_DELEGATE_GROUP",
        value_parser = named(or_none(text)),
        default_value = "",
        hide_default_value = true
    )]
    pub oidc_delegate_group: OrNone<String>,
    /// The issuer's key set (JWKS), to skip discovery of its `jwks_uri`.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_OIDC_JWKS_URL",
        value_parser = named(or_none(secure_url)),
        default_value = "",
        hide_default_value = true
    )]
    pub oidc_jwks_url: OrNone<Url>,
}

/// A URL the issuer's keys may be fetched from: https, or plain http on loopback.
fn secure_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("{text:?}: {error}"))?;
    keys::secure_enough(&url)?;
    Ok(url)
}

impl OidcArgs {
    /// The verifier's settings, or `None` without an issuer; an issuer without an audience
    /// stops the server at start.
    pub fn settings(&self) -> anyhow::Result<Option<Settings>> {
        let Some(issuer) = self.oidc_issuer.clone() else {
            return Ok(None);
        };
        let audience = self.oidc_audience.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "--oidc-issuer needs --oidc-audience (the service's client id at the \
                 issuer), or any token the issuer made for anything would be accepted"
            )
        })?;
        Ok(Some(Settings {
            keys: KeySettings {
                issuer,
                jwks_url: self.oidc_jwks_url.clone(),
                refetch_unknown_after: keys::REFETCH_UNKNOWN_AFTER,
                refresh_every: keys::REFRESH_EVERY,
            },
            audience,
            claims: ClaimMapping {
                user_claim: self.oidc_user_claim.clone(),
                groups_claim: self.oidc_groups_claim.clone(),
                admin_group: self.oidc_admin_group.clone(),
                delegate_group: self.oidc_delegate_group.clone(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::testing::parse;

    #[test]
    fn without_an_issuer_only_our_own_tokens_are_accepted() {
        let args: OidcArgs = parse(&[]).expect("parses");

        assert_eq!(args.settings().expect("valid"), None);
    }

    #[test]
    fn an_issuer_needs_an_audience_and_https_unless_on_loopback() {
        let no_audience: OidcArgs =
            parse(&["--oidc-issuer", "https://idp.example.org/realms/lab"]).expect("parses");
        let plain = parse::<OidcArgs>(&[
            "--oidc-issuer",
            "http://idp.example.org",
            "--oidc-audience",
            "sh",
        ]);
        let loopback: OidcArgs = parse(&[
            "--oidc-issuer",
            "http://127.0.0.1:5556/dex",
            "--oidc-audience",
            "sh",
        ])
        .expect("parses");

        let error = no_audience.settings().expect_err("no audience").to_string();
        assert!(error.contains("--oidc-audience"), "{error}");
        let error = plain.expect_err("plain http");
        assert!(error.starts_with("--oidc-issuer must use https"), "{error}");
        let settings = loopback.settings().expect("valid").expect("configured");
        assert_eq!(settings.audience, "sh");
        assert_eq!(settings.claims, ClaimMapping::default());
    }
}
