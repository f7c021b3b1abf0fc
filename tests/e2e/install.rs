//! The install (`docker/k8s/`, kustomize): the API server accepts the base and the PostgreSQL
//! overlay as an operator applies them (`kubectl apply -k`, server-side dry run into a fresh
//! namespace), they hold the objects and settings they promise, their Role is the one the
//! end-to-end suite runs under, and every environment variable they set is one the server reads.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;
use serde_json::Value;

use crate::harness::TestCluster;

const BASE: &str = "docker/k8s/base";
const POSTGRES: &str = "docker/k8s/overlays/postgres";

/// The repository's root (where `docker/` is).
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes, in the test's scratch directory, a kustomization that puts `install` (a directory
/// of the repository) into the test's namespace, as an operator's overlay would, and returns
/// its directory. Kustomize takes other kustomizations by relative path only.
fn into_test_namespace(cluster: &TestCluster, install: &str) -> PathBuf {
    let directory = cluster.scratch.path().join(install.replace('/', "-"));
    std::fs::create_dir_all(&directory).expect("kustomization directory");
    let from = directory.canonicalize().expect("canonical scratch path");
    let to = repository()
        .join(install)
        .canonicalize()
        .expect("canonical install path");
    let mut relative = PathBuf::new();
    for component in from.components() {
        if matches!(component, Component::Normal(_)) {
            relative.push("..");
        }
    }
    relative.push(to.strip_prefix("/").expect("absolute path"));
    std::fs::write(
        directory.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             namespace: {}\nresources:\n  - {}\n",
            cluster.namespace,
            relative.display()
        ),
    )
    .expect("write kustomization");
    directory
}

fn kubectl(cluster: &TestCluster, args: &[&str], directory: &Path) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(args)
        .arg(directory)
        .output()
        .expect("run kubectl (on PATH once the control plane's env file is sourced)")
}

/// `kubectl apply --dry-run=server -k DIRECTORY -o FORMAT`, which must succeed.
fn dry_run(cluster: &TestCluster, directory: &Path, format: &str) -> String {
    let output = kubectl(
        cluster,
        &[
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-o",
            format,
            "-k",
        ],
        directory,
    );
    assert!(
        output.status.success(),
        "kubectl apply -k {}: {}",
        directory.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The objects an apply names (`-o name`: `kind.group/name`, one a line).
fn names(output: &str) -> BTreeSet<String> {
    output.lines().map(str::to_owned).collect()
}

/// The objects of a `-o json` dry run (a `List`, or one object).
fn objects(output: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(output).expect("json");
    match value["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![value],
    }
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| object["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the install"))
}

/// The Role the end-to-end suite applies in each test namespace, as the API server stores it.
fn tested_role(cluster: &TestCluster) -> Value {
    let manifest = include_str!("../../docker/k8s/base/rbac.yaml").replace(
        "namespace: submission-helper",
        &format!("namespace: {}", cluster.namespace),
    );
    let file = cluster.scratch.path().join("tested-rbac.yaml");
    std::fs::write(&file, manifest).expect("write manifest");
    let output = kubectl(
        cluster,
        &["apply", "--dry-run=server", "-o", "json", "-f"],
        &file,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    object(&objects(&String::from_utf8_lossy(&output.stdout)), "Role").clone()
}

/// The objects both installs have, in namespace `namespace`.
fn common_objects(namespace: &str) -> BTreeSet<String> {
    [
        format!("namespace/{namespace}"),
        "serviceaccount/submission-helper".into(),
        "role.rbac.authorization.k8s.io/submission-helper".into(),
        "rolebinding.rbac.authorization.k8s.io/submission-helper".into(),
        "service/submission-helper".into(),
        "deployment.apps/submission-helper".into(),
    ]
    .into_iter()
    .collect()
}

/// The settings of the Deployment both installs share: the service account, a restricted
/// security context, the probes, resources, the pod's namespace for the Jobs, a Service that
/// reaches the pods, and the Role of the end-to-end suite bound to the service account.
fn assert_common_settings(cluster: &TestCluster, objects: &[Value]) {
    let deployment = object(objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["serviceAccountName"], "submission-helper");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(
        security["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{security}"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        container["resources"]["requests"]["memory"].is_string()
            && container["resources"]["limits"]["memory"].is_string(),
        "{container}"
    );
    let env = container["env"].as_array().expect("env");
    let namespace = env
        .iter()
        .find(|variable| variable["name"] == "SUBMISSION_HELPER_NAMESPACE")
        .expect("SUBMISSION_HELPER_NAMESPACE");
    assert_eq!(
        namespace["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace",
        "Jobs go to the pod's own namespace"
    );
    let mounts = container["volumeMounts"].as_array().expect("mounts");
    assert!(
        mounts.iter().any(|mount| mount["mountPath"] == "/tmp"),
        "a writable /tmp: {container}"
    );

    let service = object(objects, "Service");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[key], value, "the Service selects the pods");
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(container["ports"][0]["name"], "http");

    let role = object(objects, "Role");
    assert_eq!(
        role["rules"],
        tested_role(cluster)["rules"],
        "the installed Role is the one the end-to-end suite runs under"
    );
    let binding = object(objects, "RoleBinding");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "submission-helper",
            "namespace": cluster.namespace}])
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: run tests/run.sh"]
async fn the_sqlite_install_is_accepted_by_the_api_server() {
    let cluster = TestCluster::new().await;
    let install = into_test_namespace(&cluster, BASE);

    let named = names(&dry_run(&cluster, &install, "name"));
    let objects = objects(&dry_run(&cluster, &install, "json"));

    let mut expected = common_objects(&cluster.namespace);
    expected.insert("persistentvolumeclaim/submission-helper-data".into());
    assert_eq!(named, expected);
    assert_common_settings(&cluster, &objects);
    let deployment = object(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1, "SQLite has one writer");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|volume| volume["persistentVolumeClaim"]["claimName"] == "submission-helper-data"),
        "the database on the claim: {volumes:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: run tests/run.sh"]
async fn the_postgres_install_is_accepted_by_the_api_server() {
    let cluster = TestCluster::new().await;
    let install = into_test_namespace(&cluster, POSTGRES);

    let named = names(&dry_run(&cluster, &install, "name"));
    let objects = objects(&dry_run(&cluster, &install, "json"));

    let mut expected = common_objects(&cluster.namespace);
    expected.insert("poddisruptionbudget.policy/submission-helper".into());
    assert_eq!(named, expected, "no SQLite claim, a disruption budget");
    assert_common_settings(&cluster, &objects);
    let deployment = object(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deployment["spec"]["template"]["spec"];
    let database = pod["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|variable| variable["name"] == "SUBMISSION_HELPER_DATABASE_URL")
        .expect("SUBMISSION_HELPER_DATABASE_URL");
    assert_eq!(
        database["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "submission-helper-database", "key": "url"}),
        "{database}"
    );
    assert!(database.get("value").is_none(), "{database}");
    let volumes = pod["volumes"].as_array().expect("volumes");
    assert!(
        volumes
            .iter()
            .all(|volume| volume.get("persistentVolumeClaim").is_none()),
        "no SQLite volume: {volumes:?}"
    );
    let budget = object(&objects, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in budget["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(&labels[key], value, "the budget covers the pods");
    }
}

/// The `SUBMISSION_HELPER_*` names a manifest sets (`- name: SUBMISSION_HELPER_...`).
fn environment_names(manifest: &str) -> BTreeSet<String> {
    manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- name: "))
        .filter(|name| name.starts_with("SUBMISSION_HELPER_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_environment_variable_the_install_sets_is_one_the_server_reads() {
    let cli = submission_helper::cli::Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let read: BTreeSet<String> = serve
        .get_arguments()
        .filter_map(|argument| argument.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    let mut set = BTreeSet::new();
    for file in [
        "docker/k8s/base/deployment.yaml",
        "docker/k8s/overlays/postgres/deployment.yaml",
    ] {
        let manifest = std::fs::read_to_string(repository().join(file)).expect(file);
        set.extend(environment_names(&manifest));
    }
    let dockerfile =
        std::fs::read_to_string(repository().join("docker/Dockerfile")).expect("Dockerfile");
    set.extend(
        dockerfile
            .split_whitespace()
            .filter_map(|word| word.split_once('=').map(|(name, _)| name))
            .filter(|name| name.starts_with("SUBMISSION_HELPER_"))
            .map(str::to_owned),
    );

    assert!(
        set.contains("SUBMISSION_HELPER_DATABASE_URL") && set.contains("SUBMISSION_HELPER_LISTEN"),
        "{set:?}"
    );
    let unknown: Vec<_> = set.difference(&read).collect();
    assert!(
        unknown.is_empty(),
        "set but never read by `serve`: {unknown:?}"
    );
}
