//! The pod of a GA4GH TES task: its executors in order, each an init container but the last
//! (Kubernetes starts each after the previous exited 0, and with `restartPolicy: Never` the
//! first non-zero exit fails the pod before the next starts), each with its own image and argv
//! (no shell), and the files they find. Pure, pinned by snapshots.

use k8s_openapi::api::batch::v1::{PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, PodSpec, Volume, VolumeMount,
};

use crate::domain::tes::runs::{EXECUTOR_PREFIX, INPUTS_CONTAINER, OUTPUTS_CONTAINER};
use crate::domain::{ExecutorPlan, TesPlan};

/// Where inline inputs and shared directories are kept in the pod.
const SCRATCH: &str = "tes-scratch";
const SCRATCH_PATH: &str = "/.tes-scratch";
/// An environment string must stay under Linux's 128 KiB `MAX_ARG_STRLEN`.
const CHUNK_BYTES: usize = 64 * 1024;

/// Before the first executor: writes each inline input (`$1` a file under the scratch folder,
/// `$2` the variables holding its chunks; repeated until `--`), then checks that each input of
/// the claim shown elsewhere is there (`$1` its path as mounted, `$2` its URL; repeated), so a
/// missing one is said by its URL rather than found as the empty folder Kubernetes would mount
/// in its place. Constant: what users sent reaches it only as arguments and environment values,
/// never as script.
const PREPARE_INPUTS: &str = r#"set -e
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  mkdir -p /.tes-scratch/inputs
  : > "/.tes-scratch/$1"
  for name in $2; do eval "printf '%s' \"\${$name}\"" >> "/.tes-scratch/$1"; done
  shift 2
done
shift
missing=0
while [ "$#" -gt 1 ]; do
  if [ ! -e "$1" ]; then printf 'tes-input-missing %s\n' "$2"; missing=1; fi
  shift 2
done
exit $missing"#;

/// Runs an executor's argv (after `--`) with its streams redirected (`$1` stdin, `$2` stdout,
/// `$3` stderr, empty for none) and, when `$4` is `ignore`, its exit code reported in the
/// termination message and the pod carried on.
const RUN_EXECUTOR: &str = r#"in=$1 out=$2 err=$3 ignore=$4
shift 5
if [ -n "$in" ]; then exec <"$in"; fi
if [ -n "$out" ]; then mkdir -p "$(dirname "$out")"; exec >"$out"; fi
if [ -n "$err" ]; then mkdir -p "$(dirname "$err")"; exec 2>"$err"; fi
if [ "$ignore" != ignore ]; then exec "$@"; fi
"$@"
echo "tes-exit-code=$?" > /dev/termination-log 2>/dev/null || true
exit 0"#;

/// After the last executor: copies each output written elsewhere to its URL's path on the
/// claim (`$1` where it was written, `$2` where it belongs, `$3` `file`, `dir`, or `glob` for a
/// pattern whose matches go to folder `$2` less `$4` from their paths; repeated) and says each
/// one's size, or that it is missing, on a line of its own of the log. Exits 1 if any copy failed.
const COPY_OUTPUTS: &str = r#"i=0 failed=0
size() {
  if [ -d "$1" ]; then bytes=$(find "$1" -type f -exec cat {} + | wc -c); else bytes=$(wc -c < "$1"); fi
  echo $((bytes))
}
copy() {
  [ "$1" = "$2" ] && return 0
  mkdir -p "$(dirname "$2")" || return 1
  if [ -d "$1" ]; then mkdir -p "$2" && cp -R "$1/." "$2/"; else cp "$1" "$2"; fi
}
while [ "$#" -gt 3 ]; do
  from=$1 to=$2 kind=$3 prefix=$4
  shift 4
  if [ "$kind" = glob ]; then
    IFS=
    for match in $from; do
      [ -e "$match" ] || continue
      rest=${match#"$prefix"}
      if copy "$match" "$to$rest"; then
        printf 'tes-output-match %s %s %s\n' "$i" "$(size "$to$rest")" "$rest"
      else
        failed=1
      fi
    done
    unset IFS
  elif [ ! -e "$from" ]; then
    echo "tes-output-missing $i"
  elif copy "$from" "$to"; then
    echo "tes-output $i $(size "$to")"
  else
    failed=1
  fi
  i=$((i + 1))
done
exit $failed"#;

/// Turns `pod`, built for a payload with one container, into the pod of `plan`: that
/// container is the template of every executor's (security, pull policy, requests, mounts).
pub fn apply(plan: &TesPlan, pod: &mut PodSpec) {
    let Some(template) = pod.containers.first().cloned() else {
        return;
    };
    let scratch = !plan.inline_inputs.is_empty() || !plan.volumes.is_empty();
    if scratch {
        pod.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: SCRATCH.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    let claim = template
        .volume_mounts
        .as_ref()
        .and_then(|mounts| mounts.first())
        .map(|mount| mount.name.clone());
    let mut containers: Vec<Container> = Vec::new();
    let checked = claim.is_some() && !plan.claim_inputs.is_empty();
    if (!plan.inline_inputs.is_empty() || checked)
        && let Some(first) = plan.executors.first()
    {
        containers.push(prepare_inputs(plan, &first.image, &template));
    }
    for (index, executor) in plan.executors.iter().enumerate() {
        let mut mounts = template.volume_mounts.clone().unwrap_or_default();
        for (k, path) in plan.volumes.iter().enumerate() {
            mounts.push(mount(SCRATCH, path, format!("volumes/{k}"), false));
        }
        for (i, input) in plan.inline_inputs.iter().enumerate() {
            mounts.push(mount(SCRATCH, &input.path, format!("inputs/{i}"), true));
        }
        if let Some(claim) = &claim {
            for input in &plan.claim_inputs {
                mounts.push(mount(claim, &input.path, input.sub_path.clone(), true));
            }
        }
        containers.push(executor_container(index, executor, &template, mounts));
    }
    if !plan.outputs.is_empty()
        && let Some(last) = plan.executors.last()
    {
        containers.push(copy_outputs(plan, &last.image, &template));
    }
    pod.containers = containers.pop().into_iter().collect();
    pod.init_containers = (!containers.is_empty()).then_some(containers);
}

fn executor_container(
    index: usize,
    executor: &ExecutorPlan,
    template: &Container,
    mounts: Vec<VolumeMount>,
) -> Container {
    let wrapped = executor.stdin.is_some()
        || executor.stdout.is_some()
        || executor.stderr.is_some()
        || executor.ignore_error;
    let command = if wrapped {
        let path = |path: &Option<String>| path.clone().unwrap_or_default();
        let ignore = if executor.ignore_error { "ignore" } else { "" };
        let mut command = vec![
            "/bin/sh".into(),
            "-c".into(),
            RUN_EXECUTOR.into(),
            "tes-exec".into(),
        ];
        command.extend([
            path(&executor.stdin),
            path(&executor.stdout),
            path(&executor.stderr),
            ignore.into(),
            "--".into(),
        ]);
        command.extend(executor.argv.iter().cloned());
        command
    } else {
        executor.argv.clone()
    };
    let env: Vec<EnvVar> = executor
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        })
        .collect();
    Container {
        name: format!("{EXECUTOR_PREFIX}{index}"),
        image: Some(executor.image.clone()),
        command: Some(command),
        working_dir: executor.workdir.clone(),
        env: (!env.is_empty()).then_some(env),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..template.clone()
    }
}

/// One of the service's own steps: `script`, run by `image`'s `/bin/sh` with `args`.
fn own_step(
    name: &str,
    image: &str,
    script: &str,
    args: Vec<String>,
    env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
    template: &Container,
) -> Container {
    let mut command = vec!["/bin/sh".into(), "-c".into(), script.into(), name.into()];
    command.extend(args);
    Container {
        name: name.into(),
        image: Some(image.to_owned()),
        command: Some(command),
        working_dir: None,
        env: (!env.is_empty()).then_some(env),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..template.clone()
    }
}

fn copy_outputs(plan: &TesPlan, image: &str, template: &Container) -> Container {
    let mut args = Vec::new();
    for output in &plan.outputs {
        let kind = match (&output.prefix, output.directory) {
            (Some(_), _) => "glob",
            (None, true) => "dir",
            (None, false) => "file",
        };
        args.extend([
            output.path.clone(),
            output.claim_path.clone(),
            kind.into(),
            output.prefix.clone().unwrap_or_default(),
        ]);
    }
    let mut mounts = template.volume_mounts.clone().unwrap_or_default();
    for (k, path) in plan.volumes.iter().enumerate() {
        mounts.push(mount(SCRATCH, path, format!("volumes/{k}"), false));
    }
    let script = COPY_OUTPUTS;
    own_step(
        OUTPUTS_CONTAINER,
        image,
        script,
        args,
        Vec::new(),
        mounts,
        template,
    )
}

fn prepare_inputs(plan: &TesPlan, image: &str, template: &Container) -> Container {
    let mut args = Vec::new();
    let mut env = Vec::new();
    for (i, input) in plan.inline_inputs.iter().enumerate() {
        let names: Vec<String> = chunks(&input.content)
            .enumerate()
            .map(|(j, chunk)| {
                let name = format!("TES_CONTENT_{i}_{j}");
                env.push(EnvVar {
                    name: name.clone(),
                    value: Some(chunk.to_owned()),
                    value_from: None,
                });
                name
            })
            .collect();
        args.push(format!("inputs/{i}"));
        args.push(names.join(" "));
    }
    args.push("--".into());
    let mut mounts = template.volume_mounts.clone().unwrap_or_default();
    if let Some(claim) = mounts.first() {
        let root = claim.mount_path.trim_end_matches('/').to_owned();
        for input in &plan.claim_inputs {
            args.push(format!("{root}/{}", input.sub_path));
            args.push(input.url.clone());
        }
    }
    if !plan.inline_inputs.is_empty() {
        mounts.push(VolumeMount {
            name: SCRATCH.into(),
            mount_path: SCRATCH_PATH.into(),
            ..VolumeMount::default()
        });
    }
    let script = PREPARE_INPUTS;
    own_step(INPUTS_CONTAINER, image, script, args, env, mounts, template)
}

/// The rules a task's Job adds to its pod failure policy: the service's own steps (preparing
/// inputs, copying outputs) failing fails the Job at once as the system's failure (reason
/// `PodFailurePolicy`, shown as SYSTEM_ERROR), never as an executor's.
pub fn own_steps_fail_the_job(pod: &PodSpec) -> Vec<PodFailurePolicyRule> {
    let names = pod
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .map(|container| container.name.as_str());
    names
        .filter(|name| [INPUTS_CONTAINER, OUTPUTS_CONTAINER].contains(name))
        .map(|name| PodFailurePolicyRule {
            action: "FailJob".into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: Some(name.to_owned()),
                operator: "NotIn".into(),
                values: vec![0],
            }),
            on_pod_conditions: None,
        })
        .collect()
}

/// `text` in pieces of at most [`CHUNK_BYTES`], cut between characters.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut at = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(at) {
            at -= 1;
        }
        let (chunk, tail) = rest.split_at(at);
        rest = tail;
        Some(chunk)
    })
}

fn mount(volume: &str, path: &str, sub_path: String, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        sub_path: (!sub_path.is_empty()).then_some(sub_path),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use crate::cluster::manifest::{PodSettings, job};
    use crate::domain::tes::parse::parse_task;
    use crate::domain::{Progress, Submission, SubmissionId, SubmitDefaults};

    fn task_job(task: serde_json::Value) -> k8s_openapi::api::batch::v1::Job {
        let parsed = parse_task(
            serde_json::from_value(task).expect("task"),
            &SubmitDefaults::default(),
        )
        .expect("valid");
        let id = SubmissionId::from_str("01935f2e-8c4a-7b3d-9e2f-123456789abc").expect("uuid");
        let submission = Submission {
            id,
            owner: "alice".into(),
            submitted_by: "alice".into(),
            job_name: id.job_name(),
            namespace: "analysis".into(),
            spec: parsed.spec,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            progress: Progress::queued(),
            limits: Default::default(),
            notify_token: None,
            reruns: 0,
            oom_reruns: 0,
            gated: false,
            cluster: None,
        };
        job(&submission, &PodSettings::default())
    }

    #[test]
    fn a_task_of_one_executor_runs_its_argv_as_the_only_container() {
        let job = task_job(
            json!({"name": "hello", "executors": [{"image": "alpine", "command": ["echo", "hello"]}]}),
        );

        insta::assert_yaml_snapshot!(job);
    }

    #[test]
    fn executors_run_in_order_as_init_containers_with_their_files_streams_and_resources() {
        let job = task_job(json!({
            "name": "two-steps",
            "executors": [
                {"image": "busybox", "command": ["sh", "-c", "echo one > /shared/one"], "workdir": "/shared",
                 "env": {"STEP": "1"}},
                {"image": "alpine:3.20", "command": ["cat"], "stdin": "/shared/one", "stdout": "/ntuples/out/two.txt",
                 "ignore_error": true},
            ],
            "inputs": [
                {"path": "/tmp/script.sh", "content": "echo from a script\n"},
                {"url": "file:///ntuples/data/in.txt", "path": "/work/in.txt"},
            ],
            "outputs": [{"url": "file:///ntuples/out/two.txt", "path": "/ntuples/out/two.txt"}],
            "volumes": ["/shared"],
            "resources": {"cpu_cores": 2, "ram_gb": 1.5},
            "tags": {"campaign": "mc16e", "not a label": "kept in the task"},
        }));

        insta::assert_yaml_snapshot!(job);
    }

    #[test]
    fn an_ignored_error_is_reported_where_the_executors_runs_are_read() {
        assert!(super::RUN_EXECUTOR.contains(&format!(
            "echo \"{}$?\"",
            crate::domain::tes::runs::IGNORED_EXIT_PREFIX
        )));
    }

    #[test]
    fn inline_content_is_cut_into_environment_values_below_the_kernels_limit() {
        let content = "é".repeat(70 * 1024);
        let chunks: Vec<&str> = super::chunks(&content).collect();

        assert!(chunks.iter().all(|chunk| chunk.len() <= super::CHUNK_BYTES));
        assert_eq!(chunks.concat(), content);
    }
}
