//! Extractors that turn malformed requests into our problem documents instead of axum's
//! plain-text rejections, naming the field that could not be read.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::domain::FieldError;
use crate::storage::IdempotencyKey;

/// A JSON body, read with the path of the first field that failed to deserialize.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        parse_json(&bytes).map(AppJson)
    }
}

/// A submit body with its `Idempotency-Key`, if the client sent one.
pub struct Submitted<T> {
    pub body: T,
    pub idempotency: Option<IdempotencyKey>,
}

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY: usize = 255;

impl<S, T> FromRequest<S> for Submitted<T>
where
    T: Body,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = match request.headers().get(IDEMPOTENCY_KEY) {
            None => None,
            Some(value) => {
                let key = value
                    .to_str()
                    .ok()
                    .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
                    .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "Idempotency-Key",
                            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                        )
                    })?;
                Some(key.to_owned())
            }
        };
        // A request whose every field is optional may come without a body (`curl -X POST`).
        let empty = T::EMPTY_BODY_IS_DEFAULT
            && !request.headers().contains_key(header::CONTENT_TYPE)
            && !request.headers().contains_key(header::TRANSFER_ENCODING)
            && request
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|length| length == "0");
        let bytes = if empty {
            Bytes::from_static(b"{}")
        } else {
            json_bytes(request, state).await?
        };
        let body = parse_json(&bytes)?;
        let idempotency = key.map(|key| IdempotencyKey {
            key,
            fingerprint: fingerprint(&bytes),
        });
        Ok(Submitted { body, idempotency })
    }
}

/// A request body, and whether leaving it out means `{}`.
pub trait Body: DeserializeOwned {
    const EMPTY_BODY_IS_DEFAULT: bool = false;
}

/// SHA-256 of the body as canonical JSON (keys sorted, no white space), so a retry that
/// re-serializes the same request still matches.
fn fingerprint(bytes: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(bytes)
        .and_then(|value| serde_json::to_vec(&value))
        .unwrap_or_else(|_| bytes.to_vec());
    Sha256::digest(&canonical)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The body of a request declared as JSON, within the route's size limit.
async fn json_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .is_some_and(|mime| {
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "the body must be JSON, with Content-Type: application/json".into(),
        ));
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(rejection.body_text())
            } else {
                ApiError::bad_request("body", rejection.body_text())
            }
        })
}

/// Deserializes JSON, reporting where it went wrong: 400 for bytes that are not JSON, 422 for
/// JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::BadRequest {
                detail: format!("the body is not valid JSON: {inner}"),
                errors: vec![FieldError::new("body", message)],
            };
        }
        ApiError::Invalid(vec![field_error(&path, &message)])
    })?;
    deserializer.end().map_err(|error| {
        ApiError::bad_request(
            "body",
            format!("trailing characters after the JSON value: {error}"),
        )
    })?;
    Ok(value)
}

/// The path already ends with an unknown field's name; say plainly what is wrong with it.
fn field_error(path: &str, message: &str) -> FieldError {
    let field = if path.is_empty() || path == "." {
        "body"
    } else {
        path
    };
    if message.starts_with("unknown field `") {
        return FieldError::new(field, "is not a known field");
    }
    FieldError::new(field, message)
}

/// serde_json appends " at line 1 column 42"; the field name says more to a user.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The query string as key/value pairs, keeping repeated keys (`label=a=1&label=b=2`).
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(QueryPairs(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl QueryPairs {
    /// Refuses parameters the endpoint does not know, so a typo is not silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .0
            .iter()
            .find(|(key, _)| !known.contains(&key.as_str()))
        {
            Some((key, _)) => Err(ApiError::bad_request(
                key.clone(),
                format!(
                    "is not a known query parameter; expected one of {}",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, value)| value.as_str())
    }

    /// The value of a parameter given at most once.
    pub fn single(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, value)| value.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(key, "must be given at most once"));
        }
        Ok(first)
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.single(key)? {
            None => Ok(false),
            Some("" | "true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(ApiError::bad_request(key, "must be true or false")),
        }
    }

    pub fn number<T>(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(text) = self.single(key)? else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(Some(value)),
            _ => Err(ApiError::bad_request(
                key,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubmissionRequest;

    fn errors(result: Result<SubmissionRequest, ApiError>) -> (u16, Vec<FieldError>) {
        match result {
            Err(ApiError::Invalid(errors)) => (422, errors),
            Err(ApiError::BadRequest { errors, .. }) => (400, errors),
            other => panic!("expected an error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn an_unknown_field_is_named() {
        let (status, errors) = errors(parse_json(br#"{"command": "x", "privileged": true}"#));

        assert_eq!(status, 422);
        assert_eq!(
            errors,
            [FieldError::new("privileged", "is not a known field")]
        );
    }

    #[test]
    fn an_unknown_nested_field_is_named_with_its_path() {
        let (_, errors) = errors(parse_json(br#"{"resources": {"limits": {"gpu": "1"}}}"#));

        assert_eq!(errors[0].field, "resources.limits.gpu");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let (status, errors) = errors(parse_json(br#"{"env": {"A": 1}}"#));

        assert_eq!(status, 422);
        assert_eq!(errors[0].field, "env.A");
        assert!(
            errors[0].reason.contains("expected a string"),
            "{}",
            errors[0].reason
        );
    }

    #[test]
    fn bytes_that_are_not_json_are_a_bad_request() {
        let (status, errors) = errors(parse_json(b"{\"command\": "));

        assert_eq!(status, 400);
        assert_eq!(errors[0].field, "body");
    }
}
