//! A TES task as sent, parsed into the submission that runs it: every field checked and every
//! refusal named at once, the server's defaults resolved, nothing half-accepted.

use std::collections::BTreeMap;

use super::document::{Executor, Input, Resources, Task};
use super::outputs::{join, outputs};
use super::paths::{claim_path, container_path};
use super::runs::EXECUTOR_PREFIX;
use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::submission::{
    APP_LABEL, Amounts, ClaimInput, ExecutorPlan, InlineInput, LABEL_PREFIX, Resources as Requests,
    SubmissionSpec, SubmitDefaults, TesPlan, Volume, parse_cluster, parse_queueing,
};

pub const MAX_EXECUTORS: usize = 32;
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Snakemake sends its job script inline up to this size.
pub const MAX_CONTENT_BYTES: usize = 128 * 1024;
pub const MAX_TASK_CONTENT_BYTES: usize = 512 * 1024;
pub const MAX_TAGS: usize = 64;
const MAX_TAG_KEY_BYTES: usize = 253;
const MAX_TAG_VALUE_BYTES: usize = 4096;
const MAX_NAME_BYTES: usize = 1024;
/// Tags put on the Job as labels, at most (the others are kept in the task only).
const MAX_LABEL_TAGS: usize = 32;
/// The one backend parameter the service supports: the cluster a task runs in (a
/// submission's `cluster`).
pub const CLUSTER_PARAMETER: &str = "cluster";

/// A task ready to store: the document as it will be shown, the submission's specification,
/// and the tags to filter by.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTask {
    /// As sent, less the service's own fields and the backend parameters it dropped.
    pub document: Task,
    pub spec: SubmissionSpec,
    pub tags: BTreeMap<String, String>,
    /// What the task's `system_logs` say of it: each backend parameter that was dropped.
    pub notes: Vec<String>,
}

/// Parses `task` with the server's `defaults`, or names every field that is wrong.
pub fn parse_task(task: Task, defaults: &SubmitDefaults) -> Result<ParsedTask, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let volume = defaults.volume_claim.as_ref().map(|claim| Volume {
        claim: claim.clone(),
        mount_path: defaults.mount_path.clone(),
    });
    let mount = volume.as_ref().map(|volume| volume.mount_path.as_str());

    if let Some(name) = &task.name
        && name.len() > MAX_NAME_BYTES
    {
        errors.refuse(
            "name",
            format!("must be at most {MAX_NAME_BYTES} bytes long"),
        );
    }
    let executors = errors.take(executors(task.executors.as_deref(), defaults));
    let (inline_inputs, claim_inputs) = errors
        .take(inputs(task.inputs.as_deref().unwrap_or_default(), mount))
        .unwrap_or_default();
    let (outputs, shared) = errors
        .take(outputs(task.outputs.as_deref().unwrap_or_default(), mount))
        .unwrap_or_default();
    let mut volumes = Vec::new();
    for (index, path) in task.volumes.iter().flatten().enumerate() {
        match container_path(path) {
            Ok(path) => volumes.push(path),
            Err(reason) => errors.refuse(&format!("volumes[{index}]"), reason),
        }
    }
    // The folders of outputs copied after the last executor are shared like `volumes`.
    for folder in shared {
        let inside =
            |volume: &String| folder == *volume || folder.starts_with(&format!("{volume}/"));
        if !volumes.iter().any(inside) {
            volumes.push(folder);
        }
    }
    // Kubernetes mounts one thing at a path: an input cannot be a shared folder itself.
    for (index, input) in task.inputs.iter().flatten().enumerate() {
        let path = input.path.as_deref().map(container_path);
        if let Some(Ok(path)) = path
            && volumes.contains(&path)
        {
            errors.refuse(
                &format!("inputs[{index}].path"),
                "is a folder the executors share (a volume, or the folder of an output copied \
                 after them): give the input a path inside it",
            );
        }
    }
    let requests = errors.take(resources(task.resources.as_ref(), defaults));
    // A task names no queue: on a server that submits through Kueue it waits in the default one.
    let queueing = errors.take(parse_queueing(None, None, defaults.kueue.as_ref()));
    let labels = errors.take(tags(task.tags.as_ref()));
    let asked = (task.resources.as_ref())
        .and_then(|resources| {
            resources
                .backend_parameters
                .as_ref()?
                .get(CLUSTER_PARAMETER)
        })
        .cloned();
    let cluster = errors.take(parse_cluster(
        "resources.backend_parameters.cluster",
        asked,
        &defaults.clusters,
    ));

    let (Some(executors), Some(requests), Some(labels), Some(queueing), Some(cluster)) =
        (executors, requests, labels, queueing, cluster)
    else {
        return Err(errors.into_vec());
    };
    let notes = dropped_parameters(task.resources.as_ref());
    let document = stored(task);
    let spec = SubmissionSpec {
        name: document
            .name
            .clone()
            .filter(|name| !name.is_empty() && kube_rules::label_value(name).is_ok()),
        image: executors
            .first()
            .map(|e| e.image.clone())
            .unwrap_or_default(),
        command: display_command(&executors),
        registry_secret: defaults.registry_secret.clone(),
        volume,
        env: BTreeMap::new(),
        labels,
        resources: requests,
        // A failed executor is the task's outcome, not a reason to run it again.
        backoff_limit: 0,
        retry_policy: Default::default(),
        active_deadline_seconds: defaults.job.time_minutes.map(|minutes| minutes * 60),
        ttl_seconds_after_finished: defaults.job.ttl_seconds_after_finished,
        tool: format!("{EXECUTOR_PREFIX}{}", executors.len().saturating_sub(1)),
        depends_on: Vec::new(),
        notify: None,
        queueing,
        tes: Some(TesPlan {
            executors,
            inline_inputs,
            claim_inputs,
            volumes,
            outputs,
        }),
        cluster,
    };
    errors.or(ParsedTask {
        tags: document.tags.clone().unwrap_or_default(),
        document,
        spec,
        notes,
    })
}

/// A line for each backend parameter a task asked for, not strictly, that is not kept: the
/// service supports only `cluster`.
fn dropped_parameters(resources: Option<&Resources>) -> Vec<String> {
    resources
        .and_then(|resources| resources.backend_parameters.as_ref())
        .into_iter()
        .flat_map(BTreeMap::keys)
        .filter(|key| *key != CLUSTER_PARAMETER)
        .map(|key| {
            format!("backend parameter {key} is not supported by this service and was ignored")
        })
        .collect()
}

/// The document as stored: the service's own fields are its to fill, and unsupported backend
/// parameters are not kept ("backends shall not store or return unsupported keys").
fn stored(mut task: Task) -> Task {
    task.id = None;
    task.state = None;
    task.logs = None;
    task.creation_time = None;
    if let Some(resources) = &mut task.resources {
        resources.backend_parameters = (resources.backend_parameters.take())
            .map(|mut parameters| {
                parameters.retain(|key, _| key == CLUSTER_PARAMETER);
                parameters
            })
            .filter(|parameters| !parameters.is_empty());
    }
    task
}

fn executors(
    executors: Option<&[Executor]>,
    defaults: &SubmitDefaults,
) -> Result<Vec<ExecutorPlan>, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let executors = executors.unwrap_or_default();
    if executors.is_empty() || executors.len() > MAX_EXECUTORS {
        errors.refuse(
            "executors",
            format!("must hold 1 to {MAX_EXECUTORS} executors"),
        );
        return Err(errors.into_vec());
    }
    let mut plans = Vec::with_capacity(executors.len());
    for (index, executor) in executors.iter().enumerate() {
        let field = |name: &str| format!("executors[{index}].{name}");
        let image = executor.image.clone().unwrap_or_default();
        errors.check(
            &field("image"),
            kube_rules::image_reference(&image).and_then(|()| defaults.allowed.check_image(&image)),
        );
        let argv = executor.command.clone().unwrap_or_default();
        if argv.is_empty() {
            errors.refuse(&field("command"), "must name the program to run");
        } else if argv.iter().map(String::len).sum::<usize>() > MAX_COMMAND_BYTES {
            errors.refuse(
                &field("command"),
                format!("must be at most {MAX_COMMAND_BYTES} bytes long"),
            );
        } else if argv.iter().any(|arg| arg.contains('\0')) {
            errors.refuse(&field("command"), "must not contain NUL");
        }
        let mut path = |name: &str, value: &Option<String>| -> Option<String> {
            let value = value.as_deref()?;
            container_path(value)
                .map_err(|reason| errors.refuse(&field(name), reason))
                .ok()
        };
        let workdir = path("workdir", &executor.workdir);
        let stdin = path("stdin", &executor.stdin);
        let stdout = path("stdout", &executor.stdout);
        let stderr = path("stderr", &executor.stderr);
        let env = executor.env.clone().unwrap_or_default();
        for name in env.keys() {
            errors.check(
                &format!("executors[{index}].env.{name}"),
                kube_rules::env_var_name(name),
            );
        }
        plans.push(ExecutorPlan {
            image,
            argv,
            workdir,
            env,
            stdin,
            stdout,
            stderr,
            ignore_error: executor.ignore_error.unwrap_or(false),
        });
    }
    errors.or(plans)
}

type Inputs = (Vec<InlineInput>, Vec<ClaimInput>);

fn inputs(inputs: &[Input], mount: Option<&str>) -> Result<Inputs, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let (mut inline, mut claim) = (Vec::new(), Vec::new());
    let mut total = 0;
    for (index, input) in inputs.iter().enumerate() {
        let field = |name: &str| format!("inputs[{index}].{name}");
        let Some(path) = input.path.as_deref() else {
            errors.refuse(&field("path"), "is required");
            continue;
        };
        let path = match container_path(path) {
            Ok(path) => path,
            Err(reason) => {
                errors.refuse(&field("path"), reason);
                continue;
            }
        };
        match (
            input.content.as_deref().filter(|c| !c.is_empty()),
            input.url.as_deref(),
        ) {
            (Some(content), _) => {
                total += content.len();
                if content.contains('\0') {
                    errors.refuse(&field("content"), "must not contain NUL");
                } else if content.len() > MAX_CONTENT_BYTES {
                    errors.refuse(
                        &field("content"),
                        format!("must be at most {MAX_CONTENT_BYTES} bytes long"),
                    );
                } else if total > MAX_TASK_CONTENT_BYTES {
                    errors.refuse(
                        &field("content"),
                        format!(
                            "inputs' contents must be at most {MAX_TASK_CONTENT_BYTES} bytes in all"
                        ),
                    );
                }
                inline.push(InlineInput {
                    path,
                    content: content.to_owned(),
                });
            }
            (None, None) => errors.refuse(&field("url"), "is required without content"),
            (None, Some(url)) => match claim_url(url, mount) {
                Ok(sub_path) => {
                    let on_claim = mount.map(|mount| join(mount, &sub_path));
                    // Already where the executors look: the claim is mounted at its mount path.
                    if on_claim.as_deref() != Some(path.as_str()) {
                        claim.push(ClaimInput {
                            path,
                            sub_path,
                            url: url.to_owned(),
                        });
                    }
                }
                Err(reason) => errors.refuse(&field("url"), reason),
            },
        }
    }
    errors.or((inline, claim))
}

fn claim_url(url: &str, mount: Option<&str>) -> Result<String, String> {
    match mount {
        Some(mount) => claim_path(url, mount),
        None => Err("cannot be read: this server has no volume claim for files".into()),
    }
}

fn resources(
    resources: Option<&Resources>,
    defaults: &SubmitDefaults,
) -> Result<Requests, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let mut requests = Amounts {
        cpu: defaults.job.cpus.clone(),
        memory: defaults.job.memory.clone(),
    };
    let Some(resources) = resources else {
        return Ok(Requests {
            requests,
            limits: Amounts::default(),
        });
    };
    if let Some(cores) = resources.cpu_cores {
        if cores < 1 {
            errors.refuse("resources.cpu_cores", "must be at least 1");
        }
        requests.cpu = Some(cores.to_string());
    }
    for (name, value) in [("ram_gb", resources.ram_gb), ("disk_gb", resources.disk_gb)] {
        if let Some(value) = value
            && !(value.is_finite() && value > 0.0 && value < 1e6)
        {
            errors.refuse(
                &format!("resources.{name}"),
                "must be more than 0 and less than 1000000",
            );
        }
    }
    if let Some(ram) = resources.ram_gb.filter(|ram| ram.is_finite() && *ram > 0.0) {
        // GiB, as Nextflow computes it; Snakemake's decimal gigabytes then ask a little more.
        requests.memory = Some(format!("{}Mi", (ram * 1024.0).ceil() as u64));
    }
    if resources.backend_parameters_strict == Some(true) {
        let keys = resources.backend_parameters.iter().flat_map(BTreeMap::keys);
        for key in keys.filter(|key| *key != CLUSTER_PARAMETER) {
            errors.refuse(
                &format!("resources.backend_parameters.{key}"),
                "is not supported by this service",
            );
        }
    }
    errors.or(Requests {
        requests,
        limits: Amounts::default(),
    })
}

/// Checks the tags, and gives those that can be Job labels.
fn tags(
    tags: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let tags = tags.cloned().unwrap_or_default();
    if tags.len() > MAX_TAGS {
        errors.refuse("tags", format!("must hold at most {MAX_TAGS} tags"));
    }
    for (key, value) in &tags {
        if key.is_empty() || key.len() > MAX_TAG_KEY_BYTES {
            errors.refuse(
                &format!("tags.{key}"),
                format!("keys must be 1 to {MAX_TAG_KEY_BYTES} bytes long"),
            );
        } else if value.len() > MAX_TAG_VALUE_BYTES {
            errors.refuse(
                &format!("tags.{key}"),
                format!("values must be at most {MAX_TAG_VALUE_BYTES} bytes long"),
            );
        }
    }
    let labels = tags
        .into_iter()
        .filter(|(key, value)| {
            kube_rules::label_key(key).is_ok()
                && kube_rules::label_value(value).is_ok()
                && key != APP_LABEL
                && !key.starts_with(LABEL_PREFIX)
        })
        .take(MAX_LABEL_TAGS)
        .collect();
    errors.or(labels)
}

/// The executors' commands as one shell line, for people reading `/v1` (never run).
fn display_command(executors: &[ExecutorPlan]) -> String {
    executors
        .iter()
        .map(|executor| {
            executor
                .argv
                .iter()
                .map(|arg| quoted(arg))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

fn quoted(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn task(value: serde_json::Value) -> Task {
        serde_json::from_value(value).expect("valid")
    }

    fn echo() -> serde_json::Value {
        json!({"image": "alpine", "command": ["echo", "hello"]})
    }

    fn refused_fields(value: serde_json::Value) -> Vec<String> {
        let errors = parse_task(task(value), &SubmitDefaults::default()).expect_err("refused");
        errors.into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn a_bare_task_becomes_a_submission_running_its_executor_once() {
        let parsed = parse_task(
            task(json!({"name": "hello", "executors": [echo()]})),
            &SubmitDefaults::default(),
        )
        .expect("valid");

        assert_eq!(parsed.spec.image, "alpine");
        assert_eq!(parsed.spec.command, "echo hello");
        assert_eq!(parsed.spec.name.as_deref(), Some("hello"));
        assert_eq!(parsed.spec.backoff_limit, 0);
        assert_eq!(parsed.spec.tool, "exec-0");
        let plan = parsed.spec.tes.expect("valid");
        assert_eq!(plan.executors[0].argv, ["echo", "hello"]);
    }

    #[test]
    fn urls_that_are_not_files_of_the_volume_are_refused_by_field() {
        let fields = refused_fields(json!({
            "executors": [echo()],
            "inputs": [
                {"url": "s3://bucket/a", "path": "/in/a"},
                {"url": "file:///etc/passwd", "path": "/in/b"},
                {"url": "file:///ntuples/ok", "path": "/in/c"},
            ],
            "outputs": [{"url": "gs://bucket/out", "path": "/out"}],
        }));

        assert_eq!(fields, ["inputs[0].url", "inputs[1].url", "outputs[0].url"]);
    }

    #[test]
    fn the_folders_of_outputs_written_elsewhere_are_shared_once_with_the_volumes() {
        let parsed = parse_task(
            task(json!({
                "executors": [echo()],
                "outputs": [
                    {"url": "file:///ntuples/out/a.txt", "path": "/ntuples/out/a.txt"},
                    {"url": "/ntuples/work/ab/.command.out", "path": "/work/.command.out"},
                    {"url": "/ntuples/work/ab/sub/b.txt", "path": "/work/sub/b.txt"},
                    {"url": "/ntuples/work/ab/c.txt", "path": "/shared/c.txt"},
                ],
                "volumes": ["/shared"],
            })),
            &SubmitDefaults::default(),
        )
        .expect("valid");

        let plan = parsed.spec.tes.expect("plan");
        assert_eq!(plan.volumes, ["/shared", "/work"]);
        assert_eq!(plan.outputs.len(), 4);
    }

    #[test]
    fn an_input_at_a_shared_folders_own_path_is_refused() {
        let fields = refused_fields(json!({
            "executors": [echo()],
            "inputs": [{"url": "file:///ntuples/data", "path": "/work", "type": "DIRECTORY"}],
            "outputs": [{"url": "file:///ntuples/out/x", "path": "/work/x"}],
        }));

        assert_eq!(fields, ["inputs[0].path"]);
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let fields = refused_fields(json!({
            "executors": [{"image": "", "command": [], "workdir": "rel", "env": {"1A": "x"}}],
            "resources": {"cpu_cores": 0, "ram_gb": -1.0},
            "volumes": ["/"],
        }));

        assert_eq!(
            fields,
            [
                "executors[0].image",
                "executors[0].command",
                "executors[0].workdir",
                "executors[0].env.1A",
                "volumes[0]",
                "resources.cpu_cores",
                "resources.ram_gb",
            ]
        );
    }

    #[test]
    fn a_task_needs_one_to_32_executors() {
        assert_eq!(refused_fields(json!({})), ["executors"]);
        assert_eq!(
            refused_fields(json!({"executors": vec![echo(); 33]})),
            ["executors"]
        );
    }

    #[test]
    fn inline_content_is_taken_up_to_128_kib() {
        let at_most = "x".repeat(MAX_CONTENT_BYTES);
        let over = "x".repeat(MAX_CONTENT_BYTES + 1);

        let parsed = parse_task(
            task(
                json!({"executors": [echo()], "inputs": [{"path": "/tmp/s.sh", "content": at_most}]}),
            ),
            &SubmitDefaults::default(),
        );
        let fields = refused_fields(
            json!({"executors": [echo()], "inputs": [{"path": "/tmp/s.sh", "content": over}]}),
        );

        assert_eq!(
            parsed
                .expect("valid")
                .spec
                .tes
                .expect("valid")
                .inline_inputs
                .len(),
            1
        );
        assert_eq!(fields, ["inputs[0].content"]);
    }

    #[test]
    fn a_volume_file_shown_elsewhere_is_mounted_from_the_claim_and_one_in_place_needs_nothing() {
        let parsed = parse_task(
            task(json!({"executors": [echo()], "inputs": [
                {"url": "file:///ntuples/data/a.txt", "path": "/work/a.txt"},
                {"url": "file:///ntuples/data/b.txt", "path": "/ntuples/data/b.txt"},
            ]})),
            &SubmitDefaults::default(),
        )
        .expect("valid");

        let plan = parsed.spec.tes.expect("valid");
        assert_eq!(
            plan.claim_inputs,
            [ClaimInput {
                path: "/work/a.txt".into(),
                sub_path: "data/a.txt".into(),
                url: "file:///ntuples/data/a.txt".into(),
            }]
        );
    }

    #[test]
    fn resources_become_requests_in_mebibytes() {
        let parsed = parse_task(
            task(json!({"executors": [echo()], "resources": {"cpu_cores": 2, "ram_gb": 0.5}})),
            &SubmitDefaults::default(),
        )
        .expect("valid");

        assert_eq!(parsed.spec.resources.requests.cpu.as_deref(), Some("2"));
        assert_eq!(
            parsed.spec.resources.requests.memory.as_deref(),
            Some("512Mi")
        );
    }

    #[test]
    fn backend_parameters_are_dropped_unless_strict_then_each_is_refused() {
        let parsed = parse_task(task(json!({"executors": [echo()], "resources": {"backend_parameters": {"VmSize": "x"}}})), &SubmitDefaults::default()).expect("valid");
        let fields = refused_fields(
            json!({"executors": [echo()], "resources": {"backend_parameters": {"INVALID": "x"}, "backend_parameters_strict": true}}),
        );

        assert_eq!(
            parsed.document.resources.expect("valid").backend_parameters,
            None
        );
        assert_eq!(fields, ["resources.backend_parameters.INVALID"]);
    }

    #[test]
    fn the_cluster_backend_parameter_pins_the_task_and_is_kept_and_an_unknown_one_is_refused() {
        let defaults = SubmitDefaults {
            clusters: vec!["onsite".into(), "cloud".into()],
            ..SubmitDefaults::default()
        };
        let pinned = json!({"executors": [echo()], "resources": {"backend_parameters": {"cluster": "cloud", "VmSize": "x"}, "backend_parameters_strict": false}});
        let unknown = json!({"executors": [echo()], "resources": {"backend_parameters": {"cluster": "gpu"}, "backend_parameters_strict": true}});

        let parsed = parse_task(task(pinned), &defaults).expect("valid");
        let refused = parse_task(task(unknown), &defaults)
            .err()
            .unwrap_or_default();

        assert_eq!(parsed.spec.cluster.as_deref(), Some("cloud"));
        assert_eq!(
            parsed.document.resources.expect("kept").backend_parameters,
            Some(BTreeMap::from([("cluster".into(), "cloud".into())]))
        );
        assert_eq!(parsed.notes.len(), 1, "VmSize dropped: {:?}", parsed.notes);
        let fields: Vec<&str> = refused.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["resources.backend_parameters.cluster"]);
    }

    #[test]
    fn tags_that_are_labels_go_on_the_job_and_all_are_kept() {
        let parsed = parse_task(task(json!({"executors": [echo()], "tags": {"foo": "bar", "not a key": "x", "app": "y", "k": "not a value!"}})), &SubmitDefaults::default()).expect("valid");

        assert_eq!(
            parsed.spec.labels,
            BTreeMap::from([("foo".into(), "bar".into())])
        );
        assert_eq!(parsed.tags.len(), 4);
    }

    #[test]
    fn the_services_own_fields_are_ignored_in_a_request() {
        let parsed = parse_task(task(json!({"id": "x", "state": "COMPLETE", "creation_time": "now", "logs": [], "executors": [echo()]})), &SubmitDefaults::default()).expect("valid");

        assert_eq!(
            (
                parsed.document.id,
                parsed.document.state,
                parsed.document.logs
            ),
            (None, None, None)
        );
    }

    #[test]
    fn a_name_that_is_no_label_value_stays_in_the_task_only() {
        let parsed = parse_task(
            task(json!({"name": "a name with spaces", "executors": [echo()]})),
            &SubmitDefaults::default(),
        )
        .expect("valid");

        assert_eq!(parsed.spec.name, None);
        assert_eq!(parsed.document.name.as_deref(), Some("a name with spaces"));
    }
}
