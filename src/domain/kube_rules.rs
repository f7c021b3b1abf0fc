//! The Kubernetes validation rules that apply to the fields a user sends us.
//!
//! Checking them here, with the same rules the API server applies, turns a Job the API server
//! would refuse minutes later into a clear 422 at submit time, naming the field.
//! Each function returns the reason a value is refused.

/// A DNS-1123 label: the rule for names of most objects that live in one segment (63 chars).
pub fn dns1123_label(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 63 {
        return Err("must be 1 to 63 characters long".into());
    }
    if !is_lower_alnum_dash(value) {
        return Err("must consist of lowercase letters, digits and '-', and start and end with a letter or digit".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: the rule for names of secrets and volume claims.
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 {
        return Err("must be 1 to 253 characters long".into());
    }
    if !value.split('.').all(is_lower_alnum_dash) {
        return Err("must consist of lowercase letters, digits, '-' and '.', and each dot-separated part must start and end with a letter or digit".into());
    }
    Ok(())
}

fn is_lower_alnum_dash(part: &str) -> bool {
    let bytes = part.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix).map_err(|reason| format!("prefix {reason}"))?;
    }
    if name.is_empty() || name.len() > 63 {
        return Err("name part must be 1 to 63 characters long".into());
    }
    if !is_label_text(name) {
        return Err("name part must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit".into());
    }
    Ok(())
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_` and `.` with alphanumeric ends.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err("must be at most 63 characters long".into());
    }
    if !value.is_empty() && !is_label_text(value) {
        return Err("must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit".into());
    }
    Ok(())
}

fn is_label_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| edge(b) || matches!(b, b'-' | b'_' | b'.'))
}

/// An environment variable name, as the API server of every supported version accepts it.
pub fn env_var_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-' | b'.'));
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !first_ok || !rest_ok {
        return Err(
            "must consist of letters, digits, '_', '-' and '.', and must not start with a digit"
                .into(),
        );
    }
    Ok(())
}

/// An absolute mount path inside the container; `/` itself and `..` segments are refused.
pub fn mount_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if path.trim_end_matches('/').is_empty() {
        return Err("must not be the root directory".into());
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err("must not contain '..'".into());
    }
    if path.contains(':') || path.chars().any(char::is_control) || path.len() > 1024 {
        return Err(
            "must not contain ':' or control characters, and must be at most 1024 characters long"
                .into(),
        );
    }
    Ok(())
}

/// A container image reference (`registry/path:tag` or `@sha256:...`).
///
/// The API server only requires it to be non-empty without surrounding spaces; we also refuse
/// characters no registry accepts, so a typo fails here and not as an endless image pull.
pub fn image_reference(image: &str) -> Result<(), String> {
    if image.is_empty() || image.len() > 1024 {
        return Err("must be 1 to 1024 characters long".into());
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@');
    if !image.chars().all(allowed) || image.starts_with(['-', '.', '/', ':', '@']) {
        return Err(
            "must be an image reference such as registry.example.org/group/image:tag".into(),
        );
    }
    Ok(())
}

/// Parses a Kubernetes resource quantity (`500m`, `1.5`, `2Gi`, `1e3`) into its value.
///
/// Negative quantities are refused: no CPU or memory request can be negative.
pub fn quantity(text: &str) -> Result<f64, String> {
    const REASON: &str = "must be a Kubernetes quantity such as 500m, 2, 1.5Gi or 512Mi";
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number = number.strip_prefix('+').unwrap_or(number);
    let well_formed = !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit())
        && number.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !well_formed {
        return Err(REASON.into());
    }
    let value: f64 = number.parse().map_err(|_| REASON.to_string())?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let digits = exponent
                .strip_prefix(['e', 'E'])
                .ok_or_else(|| REASON.to_string())?;
            let power: i32 = digits.parse().map_err(|_| REASON.to_string())?;
            if !(-18..=18).contains(&power) {
                return Err(REASON.into());
            }
            10f64.powi(power)
        }
    };
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_follow_rfc_1123() {
        assert!(dns1123_label("ntuples-claim").is_ok());
        assert!(dns1123_label("a").is_ok());
        for bad in ["", "-a", "a-", "Upper", "a_b", "a.b", &"x".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_subdomains_allow_dots_between_labels() {
        assert!(dns1123_subdomain("sh-k8s-registry-secret").is_ok());
        assert!(dns1123_subdomain("a.b.c").is_ok());
        for bad in ["", "a..b", ".a", "a.", "A", "a_b"] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_keys_may_carry_a_prefix() {
        assert!(label_key("analysis").is_ok());
        assert!(label_key("example.org/run_2").is_ok());
        for bad in [
            "",
            "/a",
            "Example.org/a",
            "a/",
            "a b",
            "-a",
            &"k".repeat(64),
        ] {
            assert!(label_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_values_may_be_empty() {
        assert!(label_value("").is_ok());
        assert!(label_value("Run_2.a-b").is_ok());
        for bad in ["-a", "a b", "a/b", &"v".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_var_names_must_not_start_with_a_digit() {
        assert!(env_var_name("ROOTSYS").is_ok());
        assert!(env_var_name("_x.y-z").is_ok());
        for bad in ["", "1A", "A B", "A=B", "Ä"] {
            assert!(env_var_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mount_paths_are_absolute_and_not_root() {
        assert!(mount_path("/ntuples").is_ok());
        assert!(mount_path("/data/in").is_ok());
        for bad in ["ntuples", "/", "//", "/a/../etc", "/a:b", ""] {
            assert!(mount_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn image_references_look_like_registry_paths() {
        assert!(image_reference("gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample").is_ok());
        assert!(image_reference("atlas/analysisbase:21.2.171").is_ok());
        assert!(image_reference("busybox@sha256:abc123").is_ok());
        for bad in ["", "a b", "-image", "image;rm", "image\n"] {
            assert!(image_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities_parse_with_every_suffix() {
        assert_eq!(quantity("500m"), Ok(0.5));
        assert_eq!(quantity("2"), Ok(2.0));
        assert_eq!(quantity("1.5"), Ok(1.5));
        assert_eq!(quantity("1Ki"), Ok(1024.0));
        assert_eq!(quantity("2Gi"), Ok(2.0 * 1024f64.powi(3)));
        assert_eq!(quantity("1e3"), Ok(1000.0));
        assert_eq!(quantity("1M"), Ok(1e6));
        for bad in ["", "-1", "1.2.3", "Gi", "1gi", "1 Gi", "1e", "1e99", "."] {
            assert!(quantity(bad).is_err(), "{bad:?}");
        }
    }
}
