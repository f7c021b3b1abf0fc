//! What the payload and its Job are given besides the command: its name, its environment
//! variables, and the labels users find it by.

use std::collections::BTreeMap;

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::submission::labels::{APP_LABEL, IDENTIFIER_LABEL, LABEL_PREFIX};

/// Size limits that keep one request from filling the database or the API server's etcd.
pub const MAX_ENV_VARS: usize = 256;
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;
pub const MAX_USER_LABELS: usize = 32;

/// `name`: set as a label, so it follows the rules of a label value, and must not be empty.
pub(crate) fn name(name: Option<String>) -> Result<Option<String>, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    if let Some(name) = &name {
        errors.check(
            "name",
            if name.is_empty() {
                Err("must not be empty".into())
            } else {
                kube_rules::label_value(name)
            },
        );
    }
    errors.or(name)
}

/// The payload's environment and the Job's labels.
#[derive(Debug)]
pub(crate) struct EnvAndLabels {
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// `env`, and `labels` with the `identifier` label (which `identifier` also sets).
pub(crate) fn parse(
    env: BTreeMap<String, String>,
    mut labels: BTreeMap<String, String>,
    identifier: Option<String>,
) -> Result<EnvAndLabels, Vec<FieldError>> {
    let mut errors = FieldErrors::default();

    if env.len() > MAX_ENV_VARS {
        errors.refuse("env", format!("must have at most {MAX_ENV_VARS} variables"));
    }
    for (key, value) in &env {
        errors.check(&format!("env.{key}"), kube_rules::env_var_name(key));
        if value.len() > MAX_ENV_VALUE_BYTES {
            errors.refuse(
                &format!("env.{key}"),
                format!("value must be at most {MAX_ENV_VALUE_BYTES} bytes"),
            );
        }
    }

    if let Some(identifier) = identifier {
        match labels.get(IDENTIFIER_LABEL) {
            Some(label) if *label != identifier => errors.refuse(
                "identifier",
                format!("conflicts with labels.{IDENTIFIER_LABEL}; give one of them"),
            ),
            _ => match kube_rules::label_value(&identifier) {
                Ok(()) => {
                    labels.insert(IDENTIFIER_LABEL.into(), identifier);
                }
                Err(reason) => errors.refuse("identifier", reason),
            },
        }
    }
    if labels.len() > MAX_USER_LABELS {
        errors.refuse(
            "labels",
            format!("must have at most {MAX_USER_LABELS} labels"),
        );
    }
    for (key, value) in &labels {
        let field = format!("labels.{key}");
        if key == APP_LABEL || key.starts_with(LABEL_PREFIX) {
            errors.refuse(&field, "is set by the service and cannot be chosen");
            continue;
        }
        errors.check(&field, kube_rules::label_key(key));
        errors.check(&field, kube_rules::label_value(value));
    }

    errors.or(EnvAndLabels { env, labels })
}
