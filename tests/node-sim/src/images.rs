//! Image pulls, simulated. No image is ever pulled here (commands run on this machine), but
//! tests need the kubelet's answers for images that cannot be had: a reference that does not
//! parse (`InvalidImageName`), and an image the registry does not have (`ErrImagePull`, then
//! `ImagePullBackOff` while the kubelet backs off), which the operator names with
//! `--unpullable-image`.

/// Why a container's image cannot be pulled: the waiting reason and message a kubelet reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    pub reason: &'static str,
    pub message: String,
}

/// Which images this node treats as missing from their registry: those whose name contains one
/// of `unpullable`.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub unpullable: Vec<String>,
}

impl Registry {
    /// The failure a pull of `image` meets, on the `attempt`-th report (from 0): `ErrImagePull`
    /// when a pull is tried, `ImagePullBackOff` while the kubelet waits before the next, in turn.
    pub fn pull(&self, image: &str, attempt: u32) -> Option<PullFailure> {
        if !is_valid_reference(image) {
            return Some(PullFailure {
                reason: "InvalidImageName",
                message: format!(
                    "Failed to apply default image tag \"{image}\": couldn't parse image name \
                     \"{image}\": invalid reference format"
                ),
            });
        }
        if !self
            .unpullable
            .iter()
            .any(|marker| !marker.is_empty() && image.contains(marker.as_str()))
        {
            return None;
        }
        Some(if attempt.is_multiple_of(2) {
            PullFailure {
                reason: "ErrImagePull",
                message: format!("failed to pull and unpack image \"{image}\": not found"),
            }
        } else {
            PullFailure {
                reason: "ImagePullBackOff",
                message: format!("Back-off pulling image \"{image}\""),
            }
        })
    }
}

/// Whether `image` parses as a container image reference: no whitespace, and a repository part
/// (before any `@digest` or `:tag` of the last path segment) in lower case.
pub fn is_valid_reference(image: &str) -> bool {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return false;
    }
    let name = image.split('@').next().unwrap_or(image);
    let (path, last) = match name.rsplit_once('/') {
        Some((path, last)) => (Some(path), last),
        None => (None, name),
    };
    let repository = last.split(':').next().unwrap_or(last);
    // The first path segment may be a registry host (with a port), which may have upper case.
    let segments: Vec<&str> = path
        .map(|path| path.split('/').collect())
        .unwrap_or_default();
    let has_host = segments
        .first()
        .is_some_and(|first| first.contains('.') || first.contains(':') || *first == "localhost");
    let checked = segments.iter().skip(usize::from(has_host));
    !repository.is_empty()
        && checked
            .chain(std::iter::once(&repository))
            .all(|segment| !segment.is_empty() && !segment.chars().any(|c| c.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry {
            unpullable: vec!["unpullable".into()],
        }
    }

    #[test]
    fn ordinary_images_pull() {
        for image in [
            "busybox",
            "busybox:1.36",
            "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
            "Registry.Example:5000/team/app@sha256:abc",
        ] {
            assert_eq!(registry().pull(image, 0), None, "{image}");
        }
    }

    #[test]
    fn an_unpullable_image_alternates_between_pull_error_and_back_off() {
        let first = registry()
            .pull("example.org/unpullable:1", 0)
            .expect("failure");
        let second = registry()
            .pull("example.org/unpullable:1", 1)
            .expect("failure");
        let third = registry()
            .pull("example.org/unpullable:1", 2)
            .expect("failure");

        assert_eq!(first.reason, "ErrImagePull");
        assert_eq!(
            first.message,
            "failed to pull and unpack image \"example.org/unpullable:1\": not found"
        );
        assert_eq!(second.reason, "ImagePullBackOff");
        assert_eq!(
            second.message,
            "Back-off pulling image \"example.org/unpullable:1\""
        );
        assert_eq!(third.reason, "ErrImagePull");
    }

    #[test]
    fn a_reference_that_does_not_parse_is_an_invalid_image_name() {
        for image in ["Busybox", "team/App:1", "busy box", ""] {
            let failure = registry().pull(image, 0).expect("failure");
            assert_eq!(failure.reason, "InvalidImageName", "{image}");
        }
    }
}
