//! `GET /ga4gh/tes/v1/service-info`: what the service is and where tasks' files may be.
//! Public, as `/healthz`: GA4GH registries read it without credentials, and it names only the
//! volume's mount path.

use axum::Json;
use axum::extract::State as AppState;

use crate::domain::tes::document::{Organization, ServiceInfo, ServiceType};
use crate::http::Context;

/// Describe this TES service.
#[utoipa::path(
    get,
    path = "/ga4gh/tes/v1/service-info",
    tag = "TaskService",
    operation_id = "GetServiceInfo",
    security(()),
    responses((status = 200, body = ServiceInfo))
)]
pub async fn service_info(AppState(context): AppState<Context>) -> Json<ServiceInfo> {
    Json(describe(
        context
            .defaults
            .volume_claim
            .is_some()
            .then_some(context.defaults.mount_path.as_str()),
    ))
}

/// The service's description, with the volume mounted at `mount_path` as its file storage.
pub fn describe(mount_path: Option<&str>) -> ServiceInfo {
    ServiceInfo {
        id: "org.submission-helper".into(),
        name: "submission-helper".into(),
        kind: ServiceType {
            group: "org.ga4gh".into(),
            artifact: "tes".into(),
            version: "1.1.0".into(),
        },
        description: Some(
            "Runs GA4GH TES tasks as Kubernetes Jobs: executors in order in one pod, files on \
             the service's volume claim (file:// URLs under its mount path)."
                .into(),
        ),
        organization: Organization {
            name: "submission-helper".into(),
            url: "https://submission-helper.example.org".into(),
        },
        version: env!("CARGO_PKG_VERSION").into(),
        storage: mount_path
            .map(|path| format!("file://{}", path.trim_end_matches('/')))
            .into_iter()
            .collect(),
        backend_parameters: vec![crate::domain::tes::parse::CLUSTER_PARAMETER.into()],
    }
}
