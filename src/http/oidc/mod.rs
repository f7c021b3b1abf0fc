//! Sign-in with the lab's identity provider: OpenID Connect access tokens (JWTs) accepted
//! beside our own tokens.
//!
//! A bearer value shaped like a JWT goes to the [`Verifier`] when an issuer is configured;
//! anything else stays one of our own tokens. The verifier accepts only signatures by the
//! issuer's public keys ([`keys`]) with asymmetric algorithms (never `alg: none` or a shared
//! secret, so a public key cannot be used as an HMAC key), checks `iss`, `aud`, `exp` and
//! `nbf`, and maps the claims to a user with admin and delegate rights ([`claims`]), the same
//! three things one of our tokens carries. Refusals say why, never echoing the token.

pub mod claims;
pub mod keys;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

pub use claims::{ClaimMapping, Identity};
use keys::{KeyError, KeySet, KeySettings};

/// How far the clocks of the issuer and the service may disagree on `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(30);

/// The algorithms a token may be signed with: public-key ones only.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The issuer and how its keys are kept.
    pub keys: KeySettings,
    /// The `aud` a token must name.
    pub audience: String,
    pub claims: ClaimMapping,
}

/// Why a token was refused; the text is the `401` problem's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this token is not a well-formed JWT")]
    Malformed,
    #[error(
        "this token is signed with {0:?}; only RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and EdDSA are accepted"
    )]
    UnsupportedAlgorithm(String),
    #[error("this token was not issued by the configured issuer ({0})")]
    WrongIssuer(String),
    #[error("this token is not for this service: its audience (aud) does not name {0:?}")]
    WrongAudience(String),
    #[error("this token expired at {0}; sign in again")]
    Expired(String),
    #[error("this token is not valid before {0}")]
    NotYetValid(String),
    #[error("this token has no `{0}` claim")]
    MissingClaim(String),
    #[error("{}", unknown_key(.kid.as_deref(), *.unreachable))]
    UnknownKey {
        kid: Option<String>,
        unreachable: bool,
    },
    #[error("this token's algorithm {0:?} does not match its key's")]
    KeyMismatch(String),
    #[error("this token's signature does not verify with the issuer's key")]
    BadSignature,
    #[error("{0}")]
    Claims(String),
}

fn unknown_key(kid: Option<&str>, unreachable: bool) -> String {
    let which = match kid {
        Some(kid) => format!(
            "this token is signed with a key ({:?}) the issuer's key set does not have",
            kid.chars().take(64).collect::<String>()
        ),
        None => "this token names no key (kid) and the issuer's key set has more than one".into(),
    };
    if unreachable {
        format!("{which}, and the key set cannot be fetched just now; try again shortly")
    } else {
        which
    }
}

/// Checks OpenID Connect access tokens against the configured issuer.
pub struct Verifier {
    settings: Settings,
    keys: Arc<KeySet>,
}

impl Verifier {
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        // Chosen explicitly: were another crate to enable a second backend of jsonwebtoken,
        // it could not choose one and would panic at the first token. Fails only when a
        // provider is installed already, which is as good.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let keys = KeySet::new(settings.keys.clone()).map_err(std::io::Error::other)?;
        Ok(Verifier {
            settings,
            keys: Arc::new(keys),
        })
    }

    /// Keeps the issuer's keys fresh (from the start, then periodically): a background task.
    pub fn keep_keys_fresh(&self) -> impl Future<Output = ()> + Send + 'static {
        self.keys.clone().keep_fresh()
    }

    /// The identity a token proves, or why it proves none.
    pub async fn verify(&self, token: &str) -> Result<Identity, Refusal> {
        let (header, payload) = unverified_parts(token).ok_or(Refusal::Malformed)?;
        let algorithm = header
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|algorithm| ACCEPTED.contains(algorithm))
            .ok_or_else(|| Refusal::UnsupportedAlgorithm(header.alg.chars().take(32).collect()))?;
        // Checked before any key lookup, so another issuer's tokens cause no key set fetch.
        let issuer = payload
            .get("iss")
            .and_then(Value::as_str)
            .filter(|named| self.is_issuer(named))
            .ok_or_else(|| Refusal::WrongIssuer(self.issuer().to_owned()))?;
        let key = self
            .keys
            .key(header.kid.as_deref())
            .await
            .map_err(|error| match error {
                KeyError::Unknown { kid, unreachable } => Refusal::UnknownKey {
                    kid: Some(kid),
                    unreachable,
                },
                KeyError::Unnamed { unreachable } => Refusal::UnknownKey {
                    kid: None,
                    unreachable,
                },
            })?;
        if key.algorithm.is_some_and(|tied| tied != algorithm)
            || key.decoding.family() != algorithm.family()
        {
            return Err(Refusal::KeyMismatch(header.alg));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY.as_secs();
        let claims = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
            .map_err(|error| self.refusal(error.kind(), &header.alg, &payload))?
            .claims;
        self.settings
            .claims
            .identity(&claims)
            .map_err(Refusal::Claims)
    }

    /// Whether `named` (a token's `iss`) is the configured issuer, spelt as configured or
    /// with the trailing slash URL parsing adds to a bare host.
    fn is_issuer(&self, named: &str) -> bool {
        named == self.issuer() || named == self.settings.keys.issuer.as_str()
    }

    /// The issuer as tokens name it (no trailing slash added by URL parsing).
    fn issuer(&self) -> &str {
        let issuer = self.settings.keys.issuer.as_str();
        if self.settings.keys.issuer.path() == "/" {
            issuer.trim_end_matches('/')
        } else {
            issuer
        }
    }

    fn refusal(&self, kind: &ErrorKind, alg: &str, payload: &Value) -> Refusal {
        let at = |claim: &str| {
            payload
                .get(claim)
                .and_then(Value::as_i64)
                .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
                .map_or_else(|| "an unreadable time".to_owned(), |at| at.to_string())
        };
        match kind {
            ErrorKind::ExpiredSignature => Refusal::Expired(at("exp")),
            ErrorKind::ImmatureSignature => Refusal::NotYetValid(at("nbf")),
            ErrorKind::InvalidAudience => Refusal::WrongAudience(self.settings.audience.clone()),
            ErrorKind::InvalidIssuer => Refusal::WrongIssuer(self.issuer().to_owned()),
            ErrorKind::InvalidSignature => Refusal::BadSignature,
            ErrorKind::MissingRequiredClaim(claim) => Refusal::MissingClaim(claim.clone()),
            ErrorKind::InvalidAlgorithm => Refusal::KeyMismatch(alg.to_owned()),
            _ => Refusal::Malformed,
        }
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

/// The header and the claims of a JWT, unverified: only to route it and to explain refusals.
fn unverified_parts(token: &str) -> Option<(RawHeader, Value)> {
    let mut parts = token.split('.');
    let (header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: RawHeader = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    payload.is_object().then_some((header, payload))
}

/// Whether a bearer value is a JWT (three base64url parts, the first a header with an
/// `alg`), rather than one of our own tokens.
pub fn looks_like_jwt(bearer: &str) -> bool {
    bearer.split('.').count() == 3
        && bearer
            .split('.')
            .next()
            .and_then(|header| URL_SAFE_NO_PAD.decode(header).ok())
            .and_then(|header| serde_json::from_slice::<RawHeader>(&header).ok())
            .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jwt_shaped_bearers_go_to_the_verifier() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);

        assert!(looks_like_jwt(&format!("{header}.{payload}.c2ln")));
        assert!(!looks_like_jwt("sht_0123456789abcdef"));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt(&format!("{header}.{payload}")));
    }

    #[test]
    fn refusals_name_the_unsupported_algorithm_and_never_the_token() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","secret":"s3cr3t"}"#);
        let (header, payload) = unverified_parts(&format!("{header}.{payload}.")).expect("parts");

        assert_eq!(header.alg, "none");
        assert_eq!(payload["secret"], "s3cr3t");
        let refusal = Refusal::UnsupportedAlgorithm(header.alg).to_string();
        assert!(refusal.contains("\"none\""), "{refusal}");
        assert!(!refusal.contains("s3cr3t"), "{refusal}");
    }
}
