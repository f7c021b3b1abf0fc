//! The payload's image, the secret it is pulled with, and the command it runs.

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::submission::defaults::SubmitDefaults;

/// The longest command accepted: it is kept in the database and in the Job's manifest.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// What runs: an image the server allows, and a command for `bash -cl`.
#[derive(Debug)]
pub(crate) struct Payload {
    pub image: String,
    pub command: String,
    pub registry_secret: Option<String>,
}

/// `image`, `command` and `registry_secret`, each given or the server's default.
pub(crate) fn parse(
    image: Option<String>,
    command: Option<String>,
    registry_secret: Option<Option<String>>,
    defaults: &SubmitDefaults,
) -> Result<Payload, Vec<FieldError>> {
    let mut errors = FieldErrors::default();

    let image = image.or_else(|| defaults.image.clone());
    match &image {
        Some(image) => errors.check(
            "image",
            kube_rules::image_reference(image).and_then(|()| defaults.allowed.check_image(image)),
        ),
        None => errors.refuse("image", "is required: this server has no default image"),
    }

    match &command {
        None => errors.refuse("command", "is required"),
        Some(command) if command.trim().is_empty() => errors.refuse("command", "must not be empty"),
        Some(command) if command.len() > MAX_COMMAND_BYTES => errors.refuse(
            "command",
            format!("must be at most {MAX_COMMAND_BYTES} bytes"),
        ),
        Some(command) if command.contains('\0') => {
            errors.refuse("command", "must not contain NUL characters")
        }
        Some(_) => {}
    }

    let registry_secret = registry_secret.unwrap_or_else(|| defaults.registry_secret.clone());
    if let Some(secret) = &registry_secret {
        errors.check(
            "registry_secret",
            kube_rules::dns1123_subdomain(secret)
                .and_then(|()| defaults.allowed.check_registry_secret(secret)),
        );
    }

    let (Some(image), Some(command)) = (image, command) else {
        return Err(errors.into_vec());
    };
    errors.or(Payload {
        image,
        command,
        registry_secret,
    })
}
