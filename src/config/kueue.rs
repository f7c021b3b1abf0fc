//! Submitting through Kueue (`--kueue` and the flags beside it).

use clap::Args;

use super::values::{at_least_one, named, object_name};
use crate::cluster::kueue_settings::{DEFAULT_MAX_SUSPENDED, KueueSettings};
use crate::domain::KueueDefaults;

#[derive(Debug, Clone, Args)]
pub struct KueueArgs {
    /// Submit through Kueue: each Job is created suspended in a LocalQueue (a submission's
    /// `queue`) and runs once Kueue admits it within the queue's quota.
    #[arg(long, env = "SUBMISSION_HELPER_KUEUE")]
    pub kueue: bool,
    /// The LocalQueue of a submission that names none; without it such a submission is
    /// refused.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_KUEUE_DEFAULT_QUEUE",
        value_parser = named(object_name),
        requires = "kueue"
    )]
    pub kueue_default_queue: Option<String>,
    /// At most this many of the service's Jobs wait suspended in the cluster at once; the
    /// rest stay `queued` in the database, in submit order.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_KUEUE_MAX_SUSPENDED",
        value_parser = named(at_least_one),
        default_value_t = DEFAULT_MAX_SUSPENDED
    )]
    pub kueue_max_suspended: u32,
    /// Where Kueue's visibility API answers, when not through the API server's aggregation
    /// (the default): `https://127.0.0.1:8082`. Asked with the service's own credentials.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_KUEUE_VISIBILITY_URL",
        requires = "kueue"
    )]
    pub kueue_visibility_url: Option<http::Uri>,
}

impl KueueArgs {
    /// What submissions get from the server, with `--kueue`.
    pub fn defaults(&self) -> Option<KueueDefaults> {
        self.kueue.then(|| KueueDefaults {
            default_queue: self.kueue_default_queue.clone(),
        })
    }

    /// How the cluster side submits, with `--kueue`.
    pub fn settings(&self) -> Option<KueueSettings> {
        self.kueue.then(|| KueueSettings {
            max_suspended: self.kueue_max_suspended,
            visibility_url: self.kueue_visibility_url.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::testing::parse;

    #[test]
    fn without_kueue_nothing_goes_through_it() {
        let args: KueueArgs = parse(&[]).expect("parses");

        assert_eq!(args.defaults(), None);
        assert_eq!(args.settings(), None);
    }

    #[test]
    fn kueue_takes_its_default_queue_and_limit_of_suspended_jobs() {
        let args: KueueArgs = parse(&[
            "--kueue",
            "--kueue-default-queue",
            "analysis",
            "--kueue-max-suspended",
            "50",
        ])
        .expect("parses");

        assert_eq!(
            args.defaults(),
            Some(KueueDefaults {
                default_queue: Some("analysis".into())
            })
        );
        assert_eq!(
            args.settings().map(|settings| settings.max_suspended),
            Some(50)
        );
    }

    #[test]
    fn a_default_queue_without_kueue_is_refused() {
        let refused = parse::<KueueArgs>(&["--kueue-default-queue", "analysis"]);

        assert!(refused.is_err());
    }
}
