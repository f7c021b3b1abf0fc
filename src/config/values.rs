//! How the server's flags are read: each parser turns a flag's text into the value the service
//! uses, or refuses it with the flag's name and the reason (`--pending-timeout must be a
//! duration such as 10m, 90s or 1h, not "x"`), so a bad flag stops the server before it starts.

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

use crate::domain::{MAX_BACKOFF_LIMIT, RetryPolicy, check_retry_policy, kube_rules};
use crate::duration;

/// A flag's value where an empty one means none (`--k8s-registry-secret ""`, or its variable
/// set to nothing). Not written `Option<T>`, which clap reads as "the flag may be left out" and
/// so never asks the parser what an empty value means; a flag without a default of its own
/// takes `""` as its default.
pub type OrNone<T> = Option<T>;

/// `parse` as a flag's parser whose refusal reads `--flag <reason>`.
pub fn named<T, F>(parse: F) -> Named<F>
where
    F: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
{
    Named(parse)
}

/// See [`named`].
#[derive(Clone)]
pub struct Named<F>(F);

impl<T, F> TypedValueParser for Named<F>
where
    F: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg
            .and_then(clap::Arg::get_long)
            .map_or_else(|| "a flag".to_owned(), |long| format!("--{long}"));
        let refuse = |reason: String| {
            command
                .clone()
                .error(ErrorKind::ValueValidation, format!("{flag} {reason}"))
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("must be valid UTF-8".into()))?;
        (self.0)(text).map_err(refuse)
    }
}

/// A duration longer than zero, as people write it; `examples` are the flag's own.
pub fn positive_duration(
    examples: &'static str,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| {
        duration::parse(text.trim())
            .ok()
            .filter(|duration| !duration.is_zero())
            .ok_or_else(|| format!("must be a duration such as {examples}, not {text:?}"))
    }
}

/// Empty for none, else `parse`'s value.
pub fn or_none<T>(
    parse: impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
) -> impl Fn(&str) -> Result<OrNone<T>, String> + Clone + Send + Sync + 'static {
    move |text| match text {
        "" => Ok(None),
        text => parse(text).map(Some),
    }
}

/// Any text, as it is.
pub fn text(text: &str) -> Result<String, String> {
    Ok(text.to_owned())
}

/// A name Kubernetes accepts for a secret or a claim (a DNS-1123 subdomain).
pub fn object_name(text: &str) -> Result<String, String> {
    kube_rules::dns1123_subdomain(text).map(|()| text.to_owned())
}

/// A namespace (a DNS-1123 label).
pub fn namespace(text: &str) -> Result<String, String> {
    kube_rules::dns1123_label(text).map(|()| text.to_owned())
}

/// An image reference as Kubernetes takes it.
pub fn image(text: &str) -> Result<String, String> {
    kube_rules::image_reference(text).map(|()| text.to_owned())
}

/// An absolute path in the container.
pub fn mount_path(text: &str) -> Result<String, String> {
    kube_rules::mount_path(text).map(|()| text.to_owned())
}

/// A Kubernetes quantity (`4000M`, `500m`), blank for none.
pub fn quantity(text: &str) -> Result<OrNone<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    kube_rules::quantity(text).map(|_| Some(text.to_owned()))
}

/// Retries of a failed pod, within what Kubernetes takes.
pub fn retries(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .ok()
        .filter(|retries| (0..=MAX_BACKOFF_LIMIT).contains(&i64::from(*retries)))
        .ok_or_else(|| format!("must be between 0 and {MAX_BACKOFF_LIMIT}"))
}

/// A retry policy as JSON (the `retry_policy` field of a submission), checked as one is.
pub fn retry_policy(text: &str) -> Result<RetryPolicy, String> {
    let policy: RetryPolicy =
        serde_json::from_str(text).map_err(|error| format!("is not a retry policy: {error}"))?;
    check_retry_policy(policy, "retry_policy").map_err(|errors| {
        errors
            .iter()
            .map(|error| format!("{} {}", error.field, error.reason))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Minutes, 0 for no limit.
pub fn minutes_or_unlimited(text: &str) -> Result<OrNone<i64>, String> {
    match text.parse::<i64>() {
        Ok(0) => Ok(None),
        Ok(minutes) if minutes > 0 => Ok(Some(minutes)),
        _ => Err("must be 0 (no limit) or a number of minutes".into()),
    }
}

/// Seconds, blank for never.
pub fn seconds_or_never(text: &str) -> Result<OrNone<i32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i32>()
        .ok()
        .filter(|seconds| *seconds >= 0)
        .map(Some)
        .ok_or_else(|| "must be a number of seconds, or empty for never".into())
}

/// A count of at least one.
pub fn at_least_one(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|count| *count >= 1)
        .ok_or_else(|| "must be at least 1".into())
}

/// `text` as the `Origin` header a browser would send for it, if it is one: a scheme, a host
/// and maybe a port, with no path, not even a trailing `/` (it would never match).
pub fn cors_origin(text: &str) -> Result<http::HeaderValue, String> {
    let origin = text.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.authority().is_some_and(|authority| {
                !authority.host().is_empty() && !authority.as_str().contains('@')
            })
            && uri.path_and_query().is_none_or(|path| path.as_str() == "/")
            && !text.ends_with('/')
    });
    origin
        .then(|| http::HeaderValue::from_str(text).ok())
        .flatten()
        .ok_or_else(|| {
            format!(
                "must be an origin such as https://dashboard.example.org (a scheme, a host and \
                 maybe a port; no path), not {text:?}"
            )
        })
}

/// Parsing flags as `serve` does, for the tests of each group of them.
#[cfg(test)]
pub mod testing {
    /// `args` read as `serve`'s flags of the group `T`, or the refusal's first line as the
    /// user reads it after `error: `.
    pub fn parse<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> Result<T, String> {
        let refusal = |error: clap::Error| {
            let text = error.to_string();
            let line = text.lines().next().unwrap_or_default();
            line.strip_prefix("error: ").unwrap_or(line).to_owned()
        };
        let command = T::augment_args(clap::Command::new("serve"));
        let mut matches = command
            .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))
            .map_err(refusal)?;
        T::from_arg_matches_mut(&mut matches).map_err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_value_is_named_by_its_flag() {
        let error =
            testing::parse::<crate::config::notify::NotifyArgs>(&["--notify-timeout", "soon"])
                .expect_err("refused");

        assert_eq!(
            error,
            r#"--notify-timeout must be a duration such as 10s or 1m, not "soon""#
        );
    }

    #[test]
    fn an_empty_value_is_none_and_others_go_to_the_parser() {
        let secret = or_none(object_name);

        assert_eq!(secret(""), Ok(None));
        assert_eq!(secret("pull-secret"), Ok(Some("pull-secret".into())));
        assert!(secret("Not_A_Name").is_err());
    }

    #[test]
    fn zero_and_blank_durations_are_refused() {
        let timeout = positive_duration("10s or 1m");

        assert_eq!(timeout(" 90s "), Ok(Duration::from_secs(90)));
        for bad in ["0", "0s", "", " "] {
            assert!(timeout(bad).is_err(), "{bad:?}");
        }
    }
}
