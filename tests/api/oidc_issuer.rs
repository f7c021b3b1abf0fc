//! An OpenID Connect issuer for the sign-in tests: keys generated here, its discovery document
//! and key set (JWKS) served over HTTP on 127.0.0.1, and tokens minted with those keys.
//!
//! The key set can be changed (a rotation), taken down (an issuer that cannot be reached), and
//! counts its fetches, so the tests see what the service asked of it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use submission_helper::http::oidc::keys::KeySettings;
use submission_helper::http::oidc::{ClaimMapping, Settings};

/// The audience the service is configured with.
pub const AUDIENCE: &str = "submission-helper";

/// A private key of the issuer and the public half it publishes.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    /// The public key as the key set lists it.
    pub jwk: Value,
    /// The public key as PEM text, for the key-confusion attack.
    pub public_pem: Option<String>,
}

impl SigningKey {
    /// The RSA key (RS256) every test shares: generating one takes a while.
    pub fn rsa() -> SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::pkcs8::{EncodePublicKey, LineEnding};
            let private = rsa::PrivateKey::new(&mut rand::rng(), 2048).expect("rsa key");
            let der = private.to_pkcs1_der().expect("pkcs1");
            let public_pem = private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("pem");
            let mut key = SigningKey::from_der(
                "rsa-1",
                Algorithm::RS256,
                EncodingKey::from_rsa_der(der.as_bytes()),
            );
            key.public_pem = Some(public_pem);
            key
        })
        .clone()
    }

    /// A new P-256 key (ES256) with id `kid`.
    pub fn ec(kid: &str) -> SigningKey {
        use p256::elliptic_curve::Generate;
        use p256::pkcs8::EncodePrivateKey;
        let private = p256::SecretKey::generate_from_rng(&mut rand::rng());
        let der = private.to_pkcs8_der().expect("pkcs8");
        SigningKey::from_der(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    fn from_der(kid: &str, algorithm: Algorithm, encoding: EncodingKey) -> SigningKey {
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).expect("public key");
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk: serde_json::to_value(jwk).expect("jwk"),
            public_pem: None,
        }
    }

    /// A token with `claims`, signed with this key and naming it.
    pub fn mint(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("token")
    }

    /// As [`SigningKey::mint`], naming key `kid` instead of this one.
    pub fn mint_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("token")
    }
}

/// A token with `alg: none` and no signature.
pub fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A token signed HS256 with `secret` as the shared key.
pub fn hmac_signed(secret: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_secret(secret).expect("hmac key");
    jsonwebtoken::encode(&header, claims, &key).expect("token")
}

#[derive(Default)]
struct Served {
    issuer: String,
    keys: Vec<Value>,
    down: bool,
    /// Whether the discovery document answers 404 (an issuer that publishes none).
    undiscoverable: bool,
    key_set_fetches: usize,
}

type Shared = Arc<Mutex<Served>>;

/// The issuer, served until dropped.
pub struct Issuer {
    pub url: String,
    served: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    /// Serves discovery and a key set with `keys` on 127.0.0.1.
    pub async fn start(keys: &[&SigningKey]) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let served: Shared = Arc::new(Mutex::new(Served {
            issuer: url.clone(),
            keys: keys.iter().map(|key| key.jwk.clone()).collect(),
            ..Served::default()
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(key_set))
            .with_state(served.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("issuer");
        });
        Issuer {
            url,
            served,
            server,
        }
    }

    fn served(&self) -> std::sync::MutexGuard<'_, Served> {
        self.served.lock().expect("issuer state")
    }

    /// Adds `key` to the key set (a rotation).
    pub fn publish(&self, key: &SigningKey) {
        self.served().keys.push(key.jwk.clone());
    }

    /// Makes the issuer answer 503 to everything (or serve again).
    pub fn set_down(&self, down: bool) {
        self.served().down = down;
    }

    /// Makes the discovery document answer 404: only a configured key set address works.
    pub fn hide_discovery(&self) {
        self.served().undiscoverable = true;
    }

    /// How many times the key set was fetched.
    pub fn key_set_fetches(&self) -> usize {
        self.served().key_set_fetches
    }

    /// The service's settings for this issuer: discovery, our audience, the default claims,
    /// and unknown keys looked up again after `refetch_unknown_after`.
    pub fn settings(&self, refetch_unknown_after: Duration) -> Settings {
        Settings {
            keys: KeySettings {
                issuer: self.url.parse().expect("issuer url"),
                jwks_url: None,
                refetch_unknown_after,
                refresh_every: Duration::from_secs(3600),
            },
            audience: AUDIENCE.into(),
            claims: ClaimMapping {
                admin_group: Some("sh-admins".into()),
                delegate_group: Some("sh-portals".into()),
                ..ClaimMapping::default()
            },
        }
    }

    /// The claims of a valid access token for `user`, good for five minutes.
    pub fn claims(&self, user: &str) -> Value {
        let now = jiff::Timestamp::now().as_second();
        json!({
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": format!("id-of-{user}"),
            "preferred_username": user,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        })
    }
}

async fn discovery(State(served): State<Shared>) -> Result<Json<Value>, StatusCode> {
    let served = served
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    if served.down {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    if served.undiscoverable {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(json!({
        "issuer": served.issuer,
        "jwks_uri": format!("{}/keys", served.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    })))
}

async fn key_set(State(served): State<Shared>) -> Result<Json<Value>, StatusCode> {
    let mut served = served
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    if served.down {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    served.key_set_fetches += 1;
    Ok(Json(json!({ "keys": served.keys })))
}
