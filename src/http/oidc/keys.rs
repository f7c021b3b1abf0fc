//! The issuer's signing keys: its JWKS, found through OpenID Connect discovery (or at a
//! configured address), fetched at start, kept in memory and fetched again every
//! [`KeySettings::refresh_every`], and when a token names a key the set lacks (a rotation)
//! — but then at most once per [`KeySettings::refetch_unknown_after`], so tokens with made-up
//! key ids cannot make the service hammer the issuer.
//!
//! An issuer that cannot be reached changes nothing for tokens signed with keys already held;
//! only tokens naming a key not yet held are refused, with a reason that says so.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use url::Url;

/// Largest discovery document or key set read from the issuer.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The least time between two fetches caused by tokens naming unknown keys.
pub const REFETCH_UNKNOWN_AFTER: Duration = Duration::from_secs(30);
/// How often the key set is fetched anyway.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);

/// How the key set is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySettings {
    /// The issuer, whose `/.well-known/openid-configuration` names its `jwks_uri`.
    pub issuer: Url,
    /// The key set's address, to skip discovery.
    pub jwks_url: Option<Url>,
    /// The least time between two fetches caused by tokens naming unknown keys.
    pub refetch_unknown_after: Duration,
    /// How often the key set is fetched anyway, so removed keys stop working.
    pub refresh_every: Duration,
}

/// One public key of the issuer, ready to verify with.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    /// The algorithm the key set ties the key to, if it names one.
    pub algorithm: Option<Algorithm>,
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The key set (as last fetched) has no key with this id.
    Unknown { kid: String, unreachable: bool },
    /// The token names no key and the set has more than one (or none).
    Unnamed { unreachable: bool },
}

/// The issuer's keys as last fetched, shared by every request.
pub struct KeySet {
    settings: KeySettings,
    http: reqwest::Client,
    held: RwLock<Held>,
    /// Held while fetching, so requests arriving together cause one fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Held {
    keys: Arc<Vec<Key>>,
    /// When the last fetch was started, whatever became of it.
    attempted_at: Option<Instant>,
    /// Whether the last fetch failed.
    failed: bool,
}

impl Held {
    fn find(&self, kid: Option<&str>) -> Option<Key> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|key| key.kid.as_deref() == Some(kid))
                .cloned(),
            None => match self.keys.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    pub fn new(settings: KeySettings) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(KeySet {
            settings,
            http,
            held: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The key a token names by `kid` (or the only key, for a token naming none), fetching
    /// the set again first if it lacks it and the last fetch is old enough. A fetch already
    /// under way is waited for rather than started again.
    pub async fn key(&self, kid: Option<&str>) -> Result<Key, KeyError> {
        if let Some(key) = self.read().find(kid) {
            return Ok(key);
        }
        let _turn = self.fetching.lock().await;
        let due = {
            let held = self.read();
            if let Some(key) = held.find(kid) {
                return Ok(key);
            }
            held.attempted_at
                .is_none_or(|at| at.elapsed() >= self.settings.refetch_unknown_after)
        };
        if due {
            self.fetch_now().await;
        }
        let held = self.read();
        held.find(kid).ok_or_else(|| match kid {
            Some(kid) => KeyError::Unknown {
                kid: kid.to_owned(),
                unreachable: held.failed,
            },
            None => KeyError::Unnamed {
                unreachable: held.failed,
            },
        })
    }

    /// Fetches the set at start and then every `refresh_every`, until the task is dropped.
    pub async fn keep_fresh(self: Arc<Self>) {
        loop {
            {
                let _turn = self.fetching.lock().await;
                self.fetch_now().await;
            }
            tokio::time::sleep(self.settings.refresh_every).await;
        }
    }

    /// Fetches the set and keeps it, or keeps the keys held if that fails. Called with the
    /// `fetching` lock held.
    async fn fetch_now(&self) {
        self.write().attempted_at = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), issuer = %self.settings.issuer, "fetched the OpenID Connect issuer's keys");
                let mut held = self.write();
                held.keys = Arc::new(keys);
                held.failed = false;
            }
            Err(error) => {
                tracing::warn!(issuer = %self.settings.issuer, %error, "could not fetch the OpenID Connect issuer's keys; keeping the ones held");
                self.write().failed = true;
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let jwks_url = match &self.settings.jwks_url {
            Some(url) => url.clone(),
            None => self.discover().await?,
        };
        let set: RawKeySet = self.get_json(&jwks_url).await?;
        let keys = set.keys.into_iter().filter_map(usable_key).collect();
        Ok(keys)
    }

    /// The key set's address, from the issuer's discovery document.
    async fn discover(&self) -> Result<Url, String> {
        let mut url = self.settings.issuer.clone();
        let path = format!(
            "{}/.well-known/openid-configuration",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer != self.settings.issuer.as_str()
            && discovery.issuer != self.settings.issuer.as_str().trim_end_matches('/')
        {
            return Err(format!(
                "{url} names another issuer ({:?}) than the configured one",
                discovery.issuer
            ));
        }
        let jwks_url = Url::parse(&discovery.jwks_uri)
            .map_err(|error| format!("{url} has an unusable jwks_uri: {error}"))?;
        secure_enough(&jwks_url).map_err(|reason| format!("{url}: jwks_uri {reason}"))?;
        Ok(jwks_url)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, String> {
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: more than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|error| format!("GET {url}: {error}"))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A key of the set that can verify token signatures: a public key (never a shared secret)
/// not reserved for encryption. Others are skipped, so one odd key spoils nothing.
fn usable_key(value: serde_json::Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    if !matches!(
        jwk.algorithm,
        AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_)
    ) {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(named) => Some(signing_algorithm(named)?),
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id,
        decoding,
        algorithm,
    })
}

/// The signature algorithm a key's `alg` names, if it names an asymmetric one.
fn signing_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Refuses addresses that would let the keys be changed on the way: plain http is only for
/// an issuer on this machine (loopback).
pub fn secure_enough(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "must use https (plain http only on loopback), not {url}"
        )),
        other => Err(format!("must be an https address, not {other}:")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_http_is_only_for_loopback_issuers() {
        for good in [
            "https://idp.example.org/realms/lab",
            "http://127.0.0.1:8081",
            "http://[::1]:9000/dex",
            "http://localhost:5556",
        ] {
            assert_eq!(
                secure_enough(&Url::parse(good).expect("url")),
                Ok(()),
                "{good}"
            );
        }
        for bad in [
            "http://idp.example.org",
            "http://10.0.0.1",
            "ftp://idp.example.org",
        ] {
            assert!(
                secure_enough(&Url::parse(bad).expect("url")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn shared_secrets_and_encryption_keys_are_never_used_to_verify() {
        let secret = json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"});
        let encryption = json!({"kty": "OKP", "crv": "Ed25519", "use": "enc", "kid": "e",
                                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let hmac_named = json!({"kty": "OKP", "crv": "Ed25519", "alg": "HS256", "kid": "h",
                                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let signing = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "ok",
                             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});

        assert!(usable_key(secret).is_none());
        assert!(usable_key(encryption).is_none());
        assert!(usable_key(hmac_named).is_none());
        let key = usable_key(signing).expect("a signing key");
        assert_eq!(
            (key.kid.as_deref(), key.algorithm),
            (Some("ok"), Some(Algorithm::EdDSA))
        );
    }
}
