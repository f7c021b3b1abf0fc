//! How the server sends webhook notifications (`--notify-*`).

use std::time::Duration;

use clap::Args;

use super::values::{at_least_one, named, positive_duration};
use crate::duration;
use crate::webhooks::Settings;

#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// How long one webhook notification may take before it counts as failed: `10s`.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_NOTIFY_TIMEOUT",
        value_parser = named(positive_duration("10s or 1m")),
        default_value = duration::format(Settings::default().timeout)
    )]
    pub notify_timeout: Duration,
    /// Attempts at a webhook notification before it is given up (and logged).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_NOTIFY_ATTEMPTS",
        value_parser = named(at_least_one),
        default_value_t = Settings::default().attempts
    )]
    pub notify_attempts: u32,
    /// The wait after a notification's first failed attempt; it doubles after each further
    /// one, up to an hour: `5s`, `1m`.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_NOTIFY_FIRST_RETRY",
        value_parser = named(positive_duration("10s or 1m")),
        default_value = duration::format(Settings::default().first_retry)
    )]
    pub notify_first_retry: Duration,
}

impl NotifyArgs {
    /// How notifications are sent (the allowed hosts come with the submit defaults).
    pub fn webhook_settings(&self) -> Settings {
        Settings {
            timeout: self.notify_timeout,
            attempts: self.notify_attempts,
            first_retry: self.notify_first_retry,
            ..Settings::default()
        }
    }
}
