//! Where a task's files may be: paths inside the executors' containers, and `file://` URLs of
//! the service's volume claim. Anything else (`s3://`, `http://`, a path outside the mount) is
//! refused, since no part of the service could fetch or keep it.

/// A path inside a container: absolute and normalised (no `.`, `..` or empty segments, no
/// NUL), not the root. Returned without a trailing `/`.
pub fn container_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err("must not be the root directory".into());
    }
    check_segments(trimmed)?;
    Ok(trimmed.to_owned())
}

/// The path under the claim's root (`""` for the mount itself) that `url` names: a `file://`
/// URL (host empty or `localhost`) or a bare absolute path, percent-decoded, normalised, and
/// under `mount_path`.
pub fn claim_path(url: &str, mount_path: &str) -> Result<String, String> {
    let refused = || {
        let mount = mount_path.trim_end_matches('/');
        format!("only URLs under file://{mount}/ (this service's volume) can be used")
    };
    let path = if let Some(rest) = url.strip_prefix("file://") {
        let at = rest.find('/').ok_or_else(refused)?;
        let host = &rest[..at];
        if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
            return Err(format!("names another host ({host}); {}", refused()));
        }
        decode(&rest[at..])?
    } else if url.starts_with('/') {
        decode(url)?
    } else {
        return Err(refused());
    };
    let path = path.trim_end_matches('/');
    check_segments(path).map_err(|reason| format!("{reason}; {}", refused()))?;
    let mount = mount_path.trim_end_matches('/');
    if path == mount {
        return Ok(String::new());
    }
    match path
        .strip_prefix(mount)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(sub_path) => Ok(sub_path.to_owned()),
        None => Err(refused()),
    }
}

/// Refuses `.`, `..` and empty segments and NUL, which would make one path name another.
fn check_segments(path: &str) -> Result<(), String> {
    if path.contains('\0') {
        return Err("must not contain NUL".into());
    }
    if path.len() > 4096 {
        return Err("must be at most 4096 bytes long".into());
    }
    let segments = path.strip_prefix('/').unwrap_or(path).split('/');
    for segment in segments {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("must be normalised: no '.', '..' or empty segments".into());
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes; an escaped `/` or NUL, or an escape that is not one, is refused.
fn decode(path: &str) -> Result<String, String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'%' {
            decoded.push(bytes[at]);
            at += 1;
            continue;
        }
        let byte = path
            .get(at + 1..at + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .ok_or("has a '%' that is no percent-encoded byte")?;
        if byte == b'/' || byte == 0 {
            return Err("must not encode '/' or NUL".into());
        }
        decoded.push(byte);
        at += 3;
    }
    String::from_utf8(decoded).map_err(|_| "must decode to UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_under_the_mount_name_their_place_on_the_claim() {
        assert_eq!(
            claim_path("file:///ntuples/a/b.txt", "/ntuples").as_deref(),
            Ok("a/b.txt")
        );
        assert_eq!(
            claim_path("file://localhost/ntuples/a", "/ntuples").as_deref(),
            Ok("a")
        );
        assert_eq!(
            claim_path("/ntuples/a%20b", "/ntuples").as_deref(),
            Ok("a b")
        );
        assert_eq!(
            claim_path("file:///ntuples/", "/ntuples").as_deref(),
            Ok("")
        );
    }

    #[test]
    fn other_schemes_hosts_and_places_are_refused() {
        for url in [
            "s3://bucket/key",
            "gs://bucket/key",
            "http://example.org/ntuples/a",
            "https://example.org/a",
            "ftp://example.org/a",
            "drs://example.org/a",
            "file:///etc/passwd",
            "file:///ntuples/../etc",
            "file:///ntuples/%2e%2e/etc",
            "file:///ntuples/a%2Fb",
            "file://example.org/ntuples/a",
            "file:///ntuplesother/a",
            "ntuples/a",
        ] {
            assert!(claim_path(url, "/ntuples").is_err(), "{url}");
        }
    }

    #[test]
    fn the_reason_says_where_files_may_be() {
        let reason = claim_path("s3://bucket/key", "/ntuples").expect_err("refused");

        assert!(reason.contains("file:///ntuples/"), "{reason}");
    }

    #[test]
    fn container_paths_are_absolute_normalised_and_not_the_root() {
        assert_eq!(container_path("/work/").as_deref(), Ok("/work"));
        for path in ["work", "/", "/a/../b", "/a//b", "/a/./b", "/a\0"] {
            assert!(container_path(path).is_err(), "{path:?}");
        }
    }
}
