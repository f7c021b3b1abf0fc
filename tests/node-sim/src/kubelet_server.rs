//! The node's kubelet endpoint: `GET /containerLogs/{namespace}/{pod}/{container}` over HTTPS,
//! which is what the API server's `pods/log` proxy calls (at the node's InternalIP and
//! `daemonEndpoints.kubeletEndpoint.port`), so `kubectl logs [-f]` works for real.
//!
//! The certificate is self-signed and made at start: the API server does not verify a
//! kubelet's certificate unless it is given `--kubelet-certificate-authority`. Client
//! certificates are not asked for, so whatever the API server presents is accepted.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::logs::{LogKey, LogQuery, LogStore, decode};

/// A TLS acceptor with a fresh self-signed certificate for 127.0.0.1 and localhost.
pub fn tls_acceptor() -> anyhow::Result<TlsAcceptor> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(anyhow::Error::msg)?;
    // The provider is named here so no process-wide default (or another crypto crate) is needed.
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the endpoint on `listener` until the process ends; one task per connection, so a
/// slow or broken client never holds up another.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, store: LogStore) {
    let router = router(store);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a kubelet connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (tls, router) = (tls.clone(), router.clone());
        tokio::spawn(async move {
            let stream = match tls.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(router);
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "kubelet connection ended");
            }
        });
    }
}

pub fn router(store: LogStore) -> Router {
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .with_state(store)
}

async fn container_logs(
    State(store): State<LogStore>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    if query.previous {
        let message =
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let key = LogKey {
        namespace,
        pod,
        container,
    };
    // Taken before the file is read, so no line written in between is missed.
    let progress = store.progress(&key);
    let Ok(file) = tokio::fs::File::open(store.path(&key)).await else {
        let message = format!(
            "container \"{}\" in pod \"{}\" has no log on this node",
            key.container, key.pod
        );
        return (StatusCode::NOT_FOUND, message).into_response();
    };
    let (chunks, body) = mpsc::channel::<std::io::Result<Bytes>>(64);
    tokio::spawn(async move {
        if let Err(error) = stream_log(file, query, progress, &chunks).await {
            let _ = chunks.send(Err(error)).await;
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body));
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// A payload that prints this line gets a log whose plain reads never answer (follows work),
/// as a kubelet on an overloaded node may behave.
pub const HOLD_MARKER: &[u8] = b"node-sim: hold this log";

fn holds(log: &[u8]) -> bool {
    log.windows(HOLD_MARKER.len())
        .any(|window| window == HOLD_MARKER)
}

/// Sends what the client asked for from `file`, then (when following a live log) each new
/// line as it is written, until the container ends, the budget is spent or the client leaves.
async fn stream_log(
    mut file: tokio::fs::File,
    query: LogQuery,
    progress: Option<tokio::sync::watch::Receiver<crate::logs::Written>>,
    chunks: &mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let mut budget = query.budget();
    let send = |chunk: Vec<u8>, budget: &mut crate::logs::Budget| {
        let chunk = budget.spend(chunk).map(Bytes::from);
        async move {
            match chunk {
                Some(chunk) => chunks.send(Ok(chunk)).await.is_ok(),
                None => false,
            }
        }
    };

    let mut stored = Vec::new();
    file.read_to_end(&mut stored).await?;
    if !query.follow && holds(&stored) {
        // A log read that never ends, for tests of what a hung read must not hold up.
        std::future::pending::<()>().await;
    }
    // Only whole lines: the rest is picked up by the follow once it is complete.
    let whole = stored
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |at| at + 1);
    let mut offset = whole as u64;
    for line in query.select(&stored[..whole], Timestamp::now()) {
        if !send(line, &mut budget).await {
            return Ok(());
        }
    }
    let (true, Some(mut progress)) = (query.follow, progress) else {
        return Ok(());
    };
    loop {
        let written = *progress.borrow_and_update();
        if written.bytes > offset {
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            let mut more = Vec::new();
            (&mut file)
                .take(written.bytes - offset)
                .read_to_end(&mut more)
                .await?;
            let whole = more
                .iter()
                .rposition(|byte| *byte == b'\n')
                .map_or(0, |at| at + 1);
            offset += whole as u64;
            for line in more[..whole].split(|byte| *byte == b'\n') {
                let Some(entry) = decode(line) else { continue };
                if !send(query.render(&entry), &mut budget).await {
                    return Ok(());
                }
            }
            if whole > 0 {
                continue;
            }
        }
        if written.done {
            return Ok(());
        }
        tokio::select! {
            changed = progress.changed() => if changed.is_err() { return Ok(()) },
            () = chunks.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_held_when_the_marker_is_anywhere_in_it() {
        assert!(holds(b"start\nnode-sim: hold this log\nend\n"));
        assert!(!holds(b"start\nnode-sim: hold\n"));
    }
}
