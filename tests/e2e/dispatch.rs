//! The dispatcher under refusals: a create the API server refuses for a reason that may pass
//! (an admission policy, RBAC) waits its own backoff and fails after a few attempts, and never
//! holds up the submissions behind it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually};
use crate::on_the_cluster;
use crate::support::Backend;

/// An admission policy of a test, deleted when the test ends, whether it passed or not: the
/// policy is cluster-wide, and one left behind is evaluated for every Job created after it.
struct Policy {
    name: String,
    kubeconfig: PathBuf,
}

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "--ignore-not-found", "--wait=false"])
            .arg(format!("validatingadmissionpolicybinding/{}", self.name))
            .arg(format!("validatingadmissionpolicy/{}", self.name))
            .output();
    }
}

/// An admission policy, bound to this test's namespace only, that refuses (403) every Job
/// labelled `campaign=blocked`; returns once the API server enforces it.
async fn refuse_blocked_campaign(cluster: &TestCluster) -> Policy {
    let name = format!("refuse-blocked-{}", cluster.namespace);
    let manifest = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["batch"]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["jobs"]
  validations:
    - expression: "!has(object.metadata.labels) || !('campaign' in object.metadata.labels) || object.metadata.labels['campaign'] != 'blocked'"
      message: "the blocked campaign is not admitted"
      reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {namespace}
"#,
        namespace = cluster.namespace
    );
    kubectl(cluster, &manifest, &["apply", "-f"]).expect("apply the admission policy");
    let policy = Policy {
        name,
        kubeconfig: cluster.kubeconfig().to_owned(),
    };
    let probe = format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: probe
  namespace: {namespace}
  labels: {{campaign: blocked}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: '{PAYLOAD_IMAGE}'}}]
"#,
        namespace = cluster.namespace
    );
    eventually(
        "the admission policy to refuse a blocked Job",
        Duration::from_secs(60),
        || async {
            match kubectl(cluster, &probe, &["create", "--dry-run=server", "-f"]) {
                Err(refusal) if refusal.contains("the blocked campaign is not admitted") => {
                    Some(())
                }
                _ => None,
            }
        },
    )
    .await;
    policy
}

/// Runs kubectl on a manifest; its stderr when it fails.
fn kubectl(cluster: &TestCluster, manifest: &str, verb: &[&str]) -> Result<(), String> {
    let file = cluster
        .scratch
        .path()
        .join(format!("{}.yaml", uuid::Uuid::now_v7().simple()));
    std::fs::write(&file, manifest).expect("write manifest");
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(verb)
        .arg(&file)
        .output()
        .expect("run kubectl");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn batch(campaign: &str, count: usize) -> Value {
    let submissions: Vec<Value> = (0..count)
        .map(|n| {
            body!({"image": PAYLOAD_IMAGE, "command": format!("echo {n}"),
                   "labels": {"campaign": campaign}})
        })
        .collect();
    body!({ "submissions": submissions })
}

async fn submissions_behind_refused_ones_are_dispatched_at_once(backend: Backend) {
    let cluster = TestCluster::new().await;
    let _policy = refuse_blocked_campaign(&cluster).await;
    let app = cluster.spawn_service(backend).await;

    let blocked = app
        .post_json("/v1/submissions/batch", &batch("blocked", 300))
        .await;
    assert_eq!(blocked.status(), reqwest::StatusCode::CREATED);
    let submitted = Instant::now();
    let good = app
        .post_json("/v1/submissions/batch", &batch("good", 10))
        .await;
    assert_eq!(good.status(), reqwest::StatusCode::CREATED);

    let path = "/v1/submissions?label=campaign=good&state=pending,running,succeeded&limit=100";
    eventually(
        "the 10 good submissions behind 300 refused ones to get their Jobs",
        Duration::from_secs(30),
        || async {
            let page: Value = app.get(path).await.json().await.ok()?;
            (page["items"].as_array()?.len() == 10).then_some(())
        },
    )
    .await;
    println!(
        "10 good submissions behind 300 refused ones had their Jobs {:.1} s after submit",
        submitted.elapsed().as_secs_f64()
    );

    let page: Value = app
        .get("/v1/submissions?label=campaign=blocked&limit=300")
        .await
        .json()
        .await
        .expect("json");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 300);
    for item in items {
        assert_eq!(item["state"], "queued", "{item}");
    }
    let explained = items
        .iter()
        .filter(|item| {
            item["message"]
                .as_str()
                .is_some_and(|m| m.contains("the blocked campaign is not admitted"))
        })
        .count();
    assert!(
        explained > 0,
        "refused submissions say why they wait: {}",
        items[0]
    );
}
on_the_cluster!(submissions_behind_refused_ones_are_dispatched_at_once);
