//! What a parse reports of a request the user got wrong: each bad field and why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One field the user got wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where in the request, e.g. `env.1PATH` or `submissions[3].image`.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The errors of one parse, collected as it goes so that every bad field is reported at once.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records why `field` is wrong, when `result` says it is.
    pub(crate) fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(reason) = result {
            self.0.push(FieldError::new(field, reason));
        }
    }

    /// Records that `field` is wrong, and why.
    pub(crate) fn refuse(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }

    /// Keeps another parser's errors, or gives its value when it had none.
    pub(crate) fn take<T>(&mut self, parsed: Result<T, Vec<FieldError>>) -> Option<T> {
        parsed.map_err(|mut errors| self.0.append(&mut errors)).ok()
    }

    /// `value`, unless a field was wrong.
    pub(crate) fn or<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }

    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}
