//! The labels the service puts on every Job and pod: users may not set or override them.

pub const APP_LABEL: &str = "app";
pub const APP_LABEL_VALUE: &str = "submission-helper";
pub const LABEL_PREFIX: &str = "submission-helper.io/";
pub const SUBMISSION_ID_LABEL: &str = "submission-helper.io/submission-id";
pub const NAME_LABEL: &str = "submission-helper.io/name";
pub const OWNER_LABEL: &str = "submission-helper.io/owner";

/// The label the helper's `--identifier` becomes.
pub const IDENTIFIER_LABEL: &str = "identifier";
