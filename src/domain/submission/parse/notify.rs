//! Where the submission's state changes are sent (`notify_url`), and which (`notify`).

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::notify::{self, Notify, NotifyScope};

/// `notify_url` on a host the server sends to, with the changes `notify` asks for (all by
/// default); `notify` alone has nowhere to send.
pub(crate) fn parse(
    notify_url: Option<String>,
    notify: Option<NotifyScope>,
    allowed_hosts: &[String],
) -> Result<Option<Notify>, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let parsed = match (notify_url, notify) {
        (Some(url), scope) => match notify::parse_notify_url(&url, allowed_hosts) {
            Ok(url) => Some(Notify {
                url: url.to_string(),
                scope: scope.unwrap_or_default(),
            }),
            Err(reason) => {
                errors.refuse("notify_url", reason);
                None
            }
        },
        (None, Some(_)) => {
            errors.refuse("notify", "needs a notify_url to send to");
            None
        }
        (None, None) => None,
    };
    errors.or(parsed)
}
