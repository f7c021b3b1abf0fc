//! When tokens were last used, written at most once per resolution (a minute) per token, in the
//! background, so requests never wait for or each cost a write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::Instrument as _;

use crate::storage::{Store, Token};

/// Records when tokens were last used, to within `resolution`: a use is written only when the
/// stored one is older than that and this process has not written one for the token since.
#[derive(Clone)]
pub struct TokenUse {
    resolution: Duration,
    written: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Tokens remembered at most before the stale ones are forgotten.
const REMEMBERED_USES: usize = 10_000;

impl TokenUse {
    pub fn new(resolution: Duration) -> Self {
        TokenUse {
            resolution,
            written: Arc::default(),
        }
    }

    /// Notes a use of `token`, writing it in the background if it is due.
    pub fn used(&self, store: &Store, token: &Token) {
        let now = jiff::Timestamp::now();
        if !self.due(token, now, Instant::now()) {
            return;
        }
        let (store, id) = (store.clone(), token.id.clone());
        // In the request's span, so a failure is logged with its request id.
        tokio::spawn(
            async move {
                if let Err(error) = store.record_token_use(&id, now).await {
                    tracing::warn!(token_id = %id, %error, "could not record a token's use");
                }
            }
            .in_current_span(),
        );
    }

    /// Whether a use of `token` now should be written, and if so, claims the write.
    fn due(&self, token: &Token, now: jiff::Timestamp, instant: Instant) -> bool {
        let stored_recently = token
            .last_used_at
            .as_deref()
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .and_then(|at| now.duration_since(at).try_into().ok())
            .is_some_and(|since: Duration| since < self.resolution);
        if stored_recently {
            return false;
        }
        let Ok(mut written) = self.written.lock() else {
            return false;
        };
        if written
            .get(&token.id)
            .is_some_and(|at| instant.duration_since(*at) < self.resolution)
        {
            return false;
        }
        if written.len() >= REMEMBERED_USES {
            let resolution = self.resolution;
            written.retain(|_, at| instant.duration_since(*at) < resolution);
        }
        written.insert(token.id.clone(), instant);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(last_used_at: Option<&str>) -> Token {
        Token {
            id: "t1".into(),
            user: "alice".into(),
            admin: false,
            delegate: false,
            created_at: "2026-01-01T00:00:00Z".into(),
            revoked_at: None,
            max_concurrent: None,
            expires_at: None,
            last_used_at: last_used_at.map(str::to_owned),
            description: None,
        }
    }
    #[test]
    fn a_tokens_use_is_written_at_most_once_a_minute() {
        let uses = TokenUse::new(Duration::from_secs(60));
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().expect("time");
        let start = Instant::now();

        assert!(uses.due(&token(None), now, start));
        assert!(!uses.due(&token(None), now, start + Duration::from_secs(59)));
        assert!(uses.due(&token(None), now, start + Duration::from_secs(61)));
    }

    #[test]
    fn a_use_stored_within_the_minute_is_not_written_again() {
        let uses = TokenUse::new(Duration::from_secs(60));
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().expect("time");

        assert!(!uses.due(&token(Some("2026-01-01T11:59:30Z")), now, Instant::now()));
        assert!(uses.due(&token(Some("2026-01-01T11:58:00Z")), now, Instant::now()));
    }
}
