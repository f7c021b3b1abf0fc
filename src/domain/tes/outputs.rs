//! A task's outputs: where each is written, and how it reaches its URL on the volume claim.
//! An output whose `path` is its URL's own path is written in place (the claim is mounted at
//! its mount path in every executor); any other is copied there after the last executor, from
//! a folder the executors and the copying step share (the output's folder, or the directory
//! itself). Either way its size is then logged.

use super::document::{FileType, Output};
use super::paths::{claim_path, container_path};
use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::submission::OutputPlan;

/// Each output's plan, and the folders the executors must share for those copied, or every
/// field that is wrong.
pub fn outputs(
    outputs: &[Output],
    mount: Option<&str>,
) -> Result<(Vec<OutputPlan>, Vec<String>), Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let mut plans = Vec::new();
    let mut shared: Vec<String> = Vec::new();
    for (index, output) in outputs.iter().enumerate() {
        let field = |name: &str| format!("outputs[{index}].{name}");
        let path = match output.path.as_deref().map(container_path) {
            None => {
                errors.refuse(&field("path"), "is required");
                continue;
            }
            Some(Err(reason)) => {
                errors.refuse(&field("path"), reason);
                continue;
            }
            Some(Ok(path)) => path,
        };
        let prefix = if path.contains(['*', '?', '[']) {
            let prefix = match output.path_prefix.as_deref().map(container_path) {
                None => Err("is required for a path with wildcards".to_owned()),
                Some(Ok(prefix))
                    if path
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
                        && !prefix.contains(['*', '?', '[']) =>
                {
                    Ok(prefix)
                }
                Some(Ok(_)) => Err("must be a folder the path's wildcards are inside".to_owned()),
                Some(Err(reason)) => Err(reason),
            };
            match prefix {
                Ok(prefix) => Some(prefix),
                Err(reason) => {
                    errors.refuse(&field("path_prefix"), reason);
                    continue;
                }
            }
        } else {
            None
        };
        let Some(url) = output.url.as_deref() else {
            errors.refuse(&field("url"), "is required");
            continue;
        };
        let Some(mount) = mount else {
            errors.refuse(
                &field("url"),
                "cannot be written: this server has no volume claim for files",
            );
            continue;
        };
        let sub_path = match claim_path(url, mount) {
            Ok(sub_path) => sub_path,
            Err(reason) => {
                errors.refuse(&field("url"), reason);
                continue;
            }
        };
        let directory = output.kind == Some(FileType::Directory);
        let on_claim = join(mount, &sub_path);
        if !under(&path, mount) {
            let folder = if let Some(prefix) = &prefix {
                Some(prefix.clone())
            } else if directory {
                Some(path.clone())
            } else {
                path.rsplit_once('/')
                    .map(|(folder, _)| folder.to_owned())
                    .filter(|folder| !folder.is_empty())
            };
            let Some(folder) = folder else {
                errors.refuse(
                    &field("path"),
                    "must be in a folder, which the executors share with the step that copies it to its URL",
                );
                continue;
            };
            if !shared.iter().any(|done| under(&folder, done)) {
                shared.retain(|done| !under(done, &folder));
                shared.push(folder);
            }
        }
        plans.push(OutputPlan {
            path,
            claim_path: on_claim,
            directory,
            prefix,
        });
    }
    errors.or((plans, shared))
}

/// Whether `path` is `folder` or inside it.
fn under(path: &str, folder: &str) -> bool {
    let folder = folder.trim_end_matches('/');
    path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The absolute path, as mounted, of `sub_path` of the claim mounted at `mount`.
pub fn join(mount: &str, sub_path: &str) -> String {
    let mount = mount.trim_end_matches('/');
    if sub_path.is_empty() {
        mount.to_owned()
    } else {
        format!("{mount}/{sub_path}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(sent: serde_json::Value) -> Result<(Vec<OutputPlan>, Vec<String>), Vec<String>> {
        let sent: Vec<Output> = serde_json::from_value(sent).expect("outputs");
        outputs(&sent, Some("/ntuples"))
            .map_err(|errors| errors.into_iter().map(|error| error.field).collect())
    }

    #[test]
    fn an_output_at_its_urls_own_path_is_written_in_place() {
        let (plans, shared) =
            plan(json!([{"url": "file:///ntuples/out/a.txt", "path": "/ntuples/out/a.txt"}]))
                .expect("valid");

        assert_eq!(plans[0].path, plans[0].claim_path);
        assert!(shared.is_empty());
    }

    #[test]
    fn outputs_elsewhere_are_copied_from_folders_the_executors_share() {
        // As Nextflow sends them: bare paths of its work directory, files under /work
        let (plans, shared) = plan(json!([
            {"url": "/ntuples/work/ab/.command.out", "path": "/work/.command.out"},
            {"url": "/ntuples/work/ab/.exitcode", "path": "/work/.exitcode"},
            {"url": "/ntuples/work/ab/results", "path": "/work/results", "type": "DIRECTORY"},
            {"url": "file:///ntuples/x/out.txt", "path": "/ntuples/y/out.txt"},
        ]))
        .expect("valid");

        assert_eq!(shared, ["/work"]);
        assert_eq!(plans[0].claim_path, "/ntuples/work/ab/.command.out");
        assert!(plans[2].directory);
        assert_eq!(plans[3].path, "/ntuples/y/out.txt");
    }

    #[test]
    fn an_output_in_the_root_folder_a_wildcard_or_a_url_elsewhere_is_refused_by_name() {
        let refused = plan(json!([
            {"url": "/ntuples/a", "path": "/a"},
            {"url": "/ntuples/b", "path": "/work/*.txt"},
            {"url": "s3://bucket/c", "path": "/work/c"},
        ]))
        .expect_err("refused");

        assert_eq!(
            refused,
            [
                "outputs[0].path",
                "outputs[1].path_prefix",
                "outputs[2].url"
            ]
        );
    }
}
