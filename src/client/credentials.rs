//! Which server the client talks to and which token it sends: from `--server`/`--token`, else
//! `SUBMISSION_HELPER_URL`/`SUBMISSION_HELPER_TOKEN`, else the config file `login` writes
//! (`$XDG_CONFIG_HOME/submission-helper/config.toml`, or `~/.config/...`, mode 0600).
//!
//! A token saved for one server is never sent to another: the file's token is used only when
//! the server is the file's own.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use super::args::{ServerArgs, TOKEN_VARIABLE, URL_VARIABLE};
use super::error::ClientError;

/// What `login` saves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub server: Option<String>,
    pub token: Option<String>,
}

/// The server to talk to, and the token to send it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub server: Url,
    pub token: Option<String>,
}

/// Where the config file lives: `$XDG_CONFIG_HOME/submission-helper/config.toml`, else
/// `$HOME/.config/submission-helper/config.toml` (the XDG rule: a relative or empty
/// `XDG_CONFIG_HOME` is ignored).
pub fn config_path(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let base = xdg_config_home
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|path| path.is_absolute())
                .map(|home| home.join(".config"))
        })?;
    Some(base.join("submission-helper").join("config.toml"))
}

/// This process's config file path.
pub fn default_config_path() -> Option<PathBuf> {
    config_path(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// An environment variable, with an empty value taken as unset.
pub fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// A server URL as given by a user: `http://` or `https://`, with a path that ends in `/` so
/// the API's paths join beneath it (a service behind a path prefix works too).
pub fn parse_server(text: &str) -> Result<Url, ClientError> {
    let refused = |why: &str| ClientError::Usage(format!("the server {text:?} {why}"));
    let mut url = Url::parse(text.trim())
        .map_err(|_| refused("is not a URL such as https://submission-helper.example.org"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refused("must be an http:// or https:// URL"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Flags over environment over the file, for the server and the token each.
pub fn resolve(
    flags: &ServerArgs,
    environment: impl Fn(&str) -> Option<String>,
    file: Option<&ConfigFile>,
) -> Result<Target, ClientError> {
    let file_server = file.and_then(|file| file.server.as_deref());
    let server = flags
        .server
        .clone()
        .filter(|server| !server.is_empty())
        .or_else(|| environment(URL_VARIABLE))
        .or_else(|| file_server.map(str::to_owned))
        .ok_or_else(|| {
            ClientError::Usage(format!(
                "no server given: pass --server URL, set {URL_VARIABLE}, or run `submission-helper login --server URL`"
            ))
        })?;
    let server = parse_server(&server)?;
    let file_token = file
        .filter(|_| {
            file_server
                .and_then(|saved| parse_server(saved).ok())
                .is_some_and(|saved| saved == server)
        })
        .and_then(|file| file.token.clone());
    let token = flags
        .token
        .clone()
        .filter(|token| !token.is_empty())
        .or_else(|| environment(TOKEN_VARIABLE))
        .or(file_token);
    Ok(Target { server, token })
}

/// The config file, if there is one.
pub fn load(path: &Path) -> Result<Option<ConfigFile>, ClientError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ClientError::Io {
                what: format!("reading {}", path.display()),
                source,
            });
        }
    };
    toml::from_str(&text).map(Some).map_err(|error| {
        ClientError::Usage(format!(
            "the config file {} cannot be read: {}",
            path.display(),
            error.message()
        ))
    })
}

/// The target for a command: flags, environment, then the config file.
pub fn target(flags: &ServerArgs) -> Result<Target, ClientError> {
    let file = match default_config_path() {
        Some(path) => load(&path)?,
        None => None,
    };
    resolve(flags, variable, file.as_ref())
}

/// Writes the config file readable by its owner only (0600, in a 0700 directory), replacing any
/// earlier one whole: a reader never sees half a file, nor the token with wider permissions.
pub fn save(path: &Path, config: &ConfigFile) -> Result<(), ClientError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let io = |what: String| move |source| ClientError::Io { what, source };
    let directory = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(io(format!("creating {}", directory.display())))?;
    let text = toml::to_string(config)
        .map_err(|error| ClientError::Usage(format!("the config cannot be written: {error}")))?;
    let temporary = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io(format!("creating {}", temporary.display())))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(ClientError::Io {
            what: format!("writing {}", path.display()),
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(server: Option<&str>, token: Option<&str>) -> ServerArgs {
        ServerArgs {
            server: server.map(str::to_owned),
            token: token.map(str::to_owned),
        }
    }

    fn environment(
        url: Option<&'static str>,
        token: Option<&'static str>,
    ) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            URL_VARIABLE => url.map(str::to_owned),
            TOKEN_VARIABLE => token.map(str::to_owned),
            _ => None,
        }
    }

    fn file(server: &str, token: &str) -> ConfigFile {
        ConfigFile {
            server: Some(server.into()),
            token: Some(token.into()),
        }
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file() {
        let saved = file("http://file.example/", "file-token");

        let from_flags = resolve(
            &flags(Some("http://flag.example"), Some("flag-token")),
            environment(Some("http://env.example"), Some("env-token")),
            Some(&saved),
        )
        .expect("resolves");
        let from_environment = resolve(
            &flags(None, None),
            environment(Some("http://env.example"), Some("env-token")),
            Some(&saved),
        )
        .expect("resolves");
        let from_file =
            resolve(&flags(None, None), environment(None, None), Some(&saved)).expect("resolves");

        assert_eq!(
            (from_flags.server.as_str(), from_flags.token.as_deref()),
            ("http://flag.example/", Some("flag-token"))
        );
        assert_eq!(
            (
                from_environment.server.as_str(),
                from_environment.token.as_deref()
            ),
            ("http://env.example/", Some("env-token"))
        );
        assert_eq!(
            (from_file.server.as_str(), from_file.token.as_deref()),
            ("http://file.example/", Some("file-token"))
        );
    }

    #[test]
    fn the_files_token_is_never_sent_to_another_server() {
        let saved = file("http://file.example", "file-token");

        let elsewhere = resolve(
            &flags(Some("http://other.example"), None),
            environment(None, None),
            Some(&saved),
        )
        .expect("resolves");
        let same_server_by_flag = resolve(
            &flags(Some("http://file.example/"), None),
            environment(None, None),
            Some(&saved),
        )
        .expect("resolves");

        assert_eq!(elsewhere.token, None);
        assert_eq!(same_server_by_flag.token.as_deref(), Some("file-token"));
    }

    #[test]
    fn without_any_server_the_error_says_how_to_give_one() {
        let error =
            resolve(&flags(None, None), environment(None, None), None).expect_err("no server");

        assert!(error.to_string().contains("--server"), "{error}");
        assert!(error.to_string().contains(URL_VARIABLE), "{error}");
    }

    #[test]
    fn a_server_must_be_an_http_url_and_keeps_its_path_prefix() {
        assert_eq!(
            parse_server("https://host.example/prefix")
                .expect("valid")
                .join("v1/submissions")
                .expect("joins")
                .as_str(),
            "https://host.example/prefix/v1/submissions"
        );
        for text in ["localhost:8080", "ftp://host", "not a url", ""] {
            assert!(parse_server(text).is_err(), "{text}");
        }
    }

    #[test]
    fn the_config_file_follows_xdg() {
        assert_eq!(
            config_path(Some("/xdg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/xdg/submission-helper/config.toml"))
        );
        assert_eq!(
            config_path(Some("relative".into()), Some("/home/u".into())),
            Some(PathBuf::from(
                "/home/u/.config/submission-helper/config.toml"
            ))
        );
        assert_eq!(config_path(None, None), None);
    }

    #[test]
    fn a_saved_config_is_private_and_reads_back() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("new/config.toml");
        let config = file("http://127.0.0.1:8080/", "secret");

        save(&path, &config).expect("saved");
        save(&path, &config).expect("saved again over the first");

        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&path).expect("reads"), Some(config));
        assert_eq!(
            load(&directory.path().join("absent.toml")).expect("reads"),
            None
        );
    }
}
