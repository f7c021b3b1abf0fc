//! The HTTP client of the service's API.
//!
//! Every answer that is not a success becomes a [`ClientError`]: a problem document, or a short
//! description of what else came back; a server that cannot be reached is named.
//! A `429` or a `503` with `Retry-After` (nothing was done) is retried after the wait it names.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::credentials::Target;
use super::error::{ClientError, Problem};

/// How long a request (other than a log follow) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of a request the server asked to be sent again later.
const RETRIES: u32 = 5;
const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(30);

/// What an error answer becomes: its problem document, or a short description of the body.
pub fn refusal(server: &str, status: StatusCode, content_type: &str, body: &[u8]) -> ClientError {
    if (content_type.starts_with("application/problem+json")
        || content_type.starts_with("application/json"))
        && let Ok(mut problem) = serde_json::from_slice::<Problem>(body)
        && (!problem.detail.is_empty() || !problem.title.is_empty())
    {
        problem.status = status.as_u16();
        return ClientError::Refused(problem);
    }
    let text = String::from_utf8_lossy(body);
    let first_line = text.lines().map(str::trim).find(|line| !line.is_empty());
    let snippet = match first_line {
        Some(line) if !content_type.contains("html") => {
            let short: String = line.chars().take(200).collect();
            format!(": {short}")
        }
        _ => String::new(),
    };
    ClientError::Unexpected {
        server: server.to_owned(),
        status,
        snippet,
    }
}

/// The causes of an error, outermost first, joined: reqwest's own message alone rarely says
/// "connection refused".
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// A client of one server, sending one token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    server: Url,
    token: Option<String>,
}

/// A success, and whether the server answered it from an earlier identical request
/// (`Idempotent-Replayed: true`).
#[derive(Debug)]
pub struct Posted<T> {
    pub body: T,
    pub replayed: bool,
}

impl Api {
    pub fn new(target: Target) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("submission-helper/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| ClientError::Usage(format!("no HTTP client: {}", causes(&error))))?;
        Ok(Api {
            http,
            server: target.server,
            token: target.token,
        })
    }

    /// The URL of an API path (`v1/submissions`, no leading slash) with its query.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ClientError> {
        let mut url = self
            .server
            .join(path)
            .map_err(|_| ClientError::Usage(format!("{path:?} cannot be asked for")))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(key, value)| (*key, value.as_str())));
        }
        Ok(url)
    }

    fn request(&self, method: reqwest::Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`, retrying while the server asks for it, and returns a success or the
    /// error it answered with.
    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let mut attempt = 0;
        loop {
            let Some(this_time) = request.try_clone() else {
                return Err(ClientError::Usage("a request body cannot be resent".into()));
            };
            let response = this_time
                .send()
                .await
                .map_err(|error| self.unreachable(&error))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let wait = retry_after(response.headers());
            if attempt < RETRIES
                && matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                )
                && let Some(wait) = wait
            {
                attempt += 1;
                tokio::time::sleep(wait.min(LONGEST_RETRY_WAIT)).await;
                continue;
            }
            return Err(self.refused(response).await);
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> ClientError {
        let reason = if error.is_timeout() {
            "no answer in time".to_owned()
        } else {
            // The innermost cause says what went wrong ("Connection refused", a name that does
            // not resolve, a certificate); the outer ones repeat the URL.
            let mut innermost: &(dyn std::error::Error + 'static) = error;
            while let Some(cause) = innermost.source() {
                innermost = cause;
            }
            innermost.to_string()
        };
        ClientError::Unreachable {
            server: self.server.to_string(),
            reason,
        }
    }

    async fn refused(&self, response: Response) -> ClientError {
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match response.bytes().await {
            Ok(body) => refusal(self.server.as_str(), status, &content_type, &body),
            Err(error) => self.unreachable(&error),
        }
    }

    async fn decode<T: DeserializeOwned>(&self, response: Response) -> Result<T, ClientError> {
        let body = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(&error))?;
        serde_json::from_slice(&body).map_err(|error| ClientError::Unreadable(error.to_string()))
    }

    /// `GET path?query` as JSON (`serde_json::Value` for the answer as it is).
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let url = self.url(path, query)?;
        let request = self
            .request(reqwest::Method::GET, url)
            .timeout(REQUEST_TIMEOUT);
        let response = self.send(request).await?;
        self.decode(response).await
    }

    /// `POST path` with a JSON body, and an `Idempotency-Key` when given.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<Posted<T>, ClientError> {
        let url = self.url(path, &[])?;
        let mut request = self
            .request(reqwest::Method::POST, url)
            .timeout(REQUEST_TIMEOUT)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = self.send(request).await?;
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value.as_bytes() == b"true");
        Ok(Posted {
            body: self.decode(response).await?,
            replayed,
        })
    }

    /// `GET path?query` whose body is read as it arrives (a log), without a time limit.
    pub async fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Response, ClientError> {
        let url = self.url(path, query)?;
        self.send(self.request(reqwest::Method::GET, url)).await
    }

    /// The error for a body that broke off while it was read.
    pub fn broken_off(&self, error: &reqwest::Error) -> ClientError {
        self.unreachable(error)
    }
}

/// `Retry-After` in seconds (the only form this server sends).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// A path segment for an id the user typed (`submission/ID` as `get -o name` prints it, too).
pub fn id_segment(id: &str) -> String {
    let id = id.strip_prefix("submission/").unwrap_or(id);
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_prints_its_detail_and_each_field_never_json() {
        let body = br#"{"type": "urn:submission-helper:problem:invalid-request", "title": "Invalid request", "status": 422,
            "detail": "2 field(s) are invalid: ...",
            "errors": [{"field": "mount_path", "reason": "must be an absolute path"},
                       {"field": "env.1X", "reason": "must be a C identifier"}]}"#;

        let error = refusal(
            "http://s/",
            StatusCode::UNPROCESSABLE_ENTITY,
            "application/problem+json",
            body,
        );

        assert_eq!(
            error.to_string(),
            "2 field(s) are invalid: ...\n  mount_path: must be an absolute path\n  env.1X: must be a C identifier"
        );
    }

    #[test]
    fn a_refused_token_says_how_to_give_one() {
        let body =
            br#"{"title": "Authentication required", "status": 401, "detail": "unknown token"}"#;

        let error = refusal(
            "http://s/",
            StatusCode::UNAUTHORIZED,
            "application/problem+json",
            body,
        )
        .to_string();

        assert!(error.starts_with("unknown token\n"), "{error}");
        assert!(error.contains("submission-helper login"), "{error}");
    }

    #[test]
    fn an_answer_that_is_no_problem_is_described_not_dumped() {
        let html = refusal(
            "http://s/",
            StatusCode::BAD_GATEWAY,
            "text/html",
            b"<html><body>Bad gateway</body></html>",
        );
        let text = refusal(
            "http://s/",
            StatusCode::BAD_GATEWAY,
            "text/plain",
            b"\nupstream connect error\nmore",
        );

        assert_eq!(
            html.to_string(),
            "the server at http://s/ answered 502 Bad Gateway"
        );
        assert_eq!(
            text.to_string(),
            "the server at http://s/ answered 502 Bad Gateway: upstream connect error"
        );
    }

    #[test]
    fn ids_are_taken_bare_or_as_get_prints_their_names() {
        assert_eq!(id_segment("submission/0193-ab"), "0193-ab");
        assert_eq!(id_segment("0193-ab"), "0193-ab");
        assert_eq!(id_segment("a/b"), "a%2Fb");
    }
}
