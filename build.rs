//! Bundles uPlot, the page's charting library, from its npm package: the published tarball of
//! one pinned version, checked against the integrity hash the npm registry publishes for it,
//! is read from `~/.cache/submission-helper/npm/` (or `$SUBMISSION_HELPER_CACHE/npm/`), else
//! downloaded there once from registry.npmjs.org. Its script and stylesheet are built into the
//! binary like the page's other files: the page asks nothing of any other server.
//!
//! `SUBMISSION_HELPER_UPLOT_TGZ` names a tarball to use instead (an offline build); it is
//! checked the same way.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha512};

const VERSION: &str = "1.6.32";
const INTEGRITY: &str = "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==";
/// The package's files the page serves, and the names it serves them by.
const FILES: [(&str, &str); 2] = [
    ("package/dist/uPlot.iife.min.js", "uplot.js"),
    ("package/dist/uPlot.min.css", "uplot.css"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SUBMISSION_HELPER_UPLOT_TGZ");
    println!("cargo:rerun-if-env-changed=SUBMISSION_HELPER_CACHE");
    if let Err(error) = bundle() {
        panic!("uPlot {VERSION} for the page: {error}");
    }
}

fn bundle() -> Result<(), String> {
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let tarball = match std::env::var_os("SUBMISSION_HELPER_UPLOT_TGZ") {
        Some(given) => read_checked(Path::new(&given))?,
        None => cached_or_fetched()?,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball.as_slice()));
    let mut found = 0;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if let Some((_, name)) = FILES.iter().find(|(inside, _)| path == Path::new(inside)) {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(|e| e.to_string())?;
            std::fs::write(out.join(name), content).map_err(|e| e.to_string())?;
            found += 1;
        }
    }
    if found != FILES.len() {
        return Err("the package lacks its dist files".into());
    }
    Ok(())
}

/// The tarball from the cache, or from the registry into the cache.
fn cached_or_fetched() -> Result<Vec<u8>, String> {
    let cache = match std::env::var_os("SUBMISSION_HELPER_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?)
            .join(".cache/submission-helper"),
    };
    let file = cache.join(format!("npm/uplot-{VERSION}.tgz"));
    if let Ok(tarball) = read_checked(&file) {
        return Ok(tarball);
    }
    let url = format!("https://registry.npmjs.org/uplot/-/uplot-{VERSION}.tgz");
    let mut tarball = Vec::new();
    // The system's certificates, as curl and pip use them (a proxy's own CA included).
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
    agent
        .get(&url)
        .call()
        .map_err(|e| format!("{url}: {e} (an offline build sets SUBMISSION_HELPER_UPLOT_TGZ)"))?
        .into_body()
        .into_reader()
        .read_to_end(&mut tarball)
        .map_err(|e| format!("{url}: {e}"))?;
    check(&tarball)?;
    if let Some(folder) = file.parent() {
        // A cache that cannot be written costs a download next time, nothing else.
        let partial = file.with_extension("tgz.part");
        let kept = std::fs::create_dir_all(folder)
            .and_then(|()| std::fs::write(&partial, &tarball))
            .and_then(|()| std::fs::rename(&partial, &file));
        if let Err(error) = kept {
            println!(
                "cargo:warning=uPlot not cached in {}: {error}",
                file.display()
            );
        }
    }
    Ok(tarball)
}

fn read_checked(file: &Path) -> Result<Vec<u8>, String> {
    let tarball = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    check(&tarball).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(tarball)
}

/// Whether `tarball` is the one the registry published, by its integrity hash.
fn check(tarball: &[u8]) -> Result<(), String> {
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(tarball));
    if format!("sha512-{digest}") == INTEGRITY {
        Ok(())
    } else {
        Err(format!(
            "its integrity sha512-{digest} is not the published {INTEGRITY}"
        ))
    }
}
