//! The volume with the payload's input data, and where it is mounted.

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::submission::defaults::SubmitDefaults;
use crate::domain::submission::spec::Volume;

/// `volume_claim` and `mount_path`, each given or the server's default; a claim of `null`
/// asks for no volume.
pub(crate) fn parse(
    volume_claim: Option<Option<String>>,
    mount_path: Option<String>,
    defaults: &SubmitDefaults,
) -> Result<Option<Volume>, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let claim = volume_claim.unwrap_or_else(|| defaults.volume_claim.clone());
    let Some(claim) = claim else {
        if mount_path.is_some() {
            errors.refuse("mount_path", "has no effect when volume_claim is null");
        }
        return errors.or(None);
    };
    let mount_path = mount_path.unwrap_or_else(|| defaults.mount_path.clone());
    errors.check(
        "volume_claim",
        kube_rules::dns1123_subdomain(&claim)
            .and_then(|()| defaults.allowed.check_volume_claim(&claim)),
    );
    errors.check("mount_path", kube_rules::mount_path(&mount_path));
    errors.or(Some(Volume { claim, mount_path }))
}
