//! What the cluster side does, for `/metrics`: reconciles (how many, how many failed, how many
//! wait), the lag from a change the watch saw to the state recorded, and the requests the
//! service sends the API server (at rest these are the watches alone).

use std::sync::Arc;

use http::Request;
use kube::client::Body;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Verb {
    /// `watch`, `get` (reads, lists and logs), `create`, `delete` or `update`.
    pub verb: &'static str,
}

/// The cluster side's metrics. Shared by the controller, the client and `/metrics`.
pub struct ClusterMetrics {
    registry: Registry,
    pub reconciles: Family<Outcome, Counter>,
    pub queue_depth: Gauge,
    pub in_flight: Gauge,
    pub lag: Histogram,
    pub api_requests: Family<Verb, Counter>,
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("submission_helper");
        let reconciles = Family::<Outcome, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of a submission with its Job and pods, by result",
            reconciles.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "reconcile_queue_depth",
            "Submissions waiting to be reconciled (due now or backing off)",
            queue_depth.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now",
            in_flight.clone(),
        );
        // 1 ms to about 65 s.
        let lag = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "reconcile_lag_seconds",
            "From a Job or pod event to its submission's recorded change",
            lag.clone(),
        );
        let api_requests = Family::<Verb, Counter>::default();
        registry.register(
            "apiserver_requests",
            "Requests sent to the Kubernetes API server, by verb",
            api_requests.clone(),
        );
        ClusterMetrics {
            registry,
            reconciles,
            queue_depth,
            in_flight,
            lag,
            api_requests,
        }
    }
}

impl ClusterMetrics {
    /// Appends the metrics in the Prometheus text format.
    pub fn encode(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }

    /// Counts one request to the API server; a layer of the kube client calls it.
    pub fn count_request(&self, request: &Request<Body>) {
        let verb = match request.method().as_str() {
            "GET"
                if request
                    .uri()
                    .query()
                    .is_some_and(|query| query.split('&').any(|pair| pair == "watch=true")) =>
            {
                "watch"
            }
            "GET" => "get",
            "POST" => "create",
            "DELETE" => "delete",
            _ => "update",
        };
        self.api_requests.get_or_create(&Verb { verb }).inc();
    }
}

/// A tower layer for the kube client that counts every request it sends.
pub fn counting_layer(
    metrics: Arc<ClusterMetrics>,
) -> tower::util::MapRequestLayer<impl FnMut(Request<Body>) -> Request<Body> + Clone> {
    tower::util::MapRequestLayer::new(move |request: Request<Body>| {
        metrics.count_request(&request);
        request
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request")
    }

    #[test]
    fn requests_are_counted_by_verb_and_a_watch_is_told_from_a_list() {
        let metrics = ClusterMetrics::default();
        let jobs = "/apis/batch/v1/namespaces/default/jobs";
        metrics.count_request(&request(
            "GET",
            &format!("{jobs}?labelSelector=a&watch=true"),
        ));
        metrics.count_request(&request("GET", &format!("{jobs}?labelSelector=a")));
        metrics.count_request(&request("POST", jobs));
        metrics.count_request(&request("DELETE", &format!("{jobs}/sh-1")));

        let mut text = String::new();
        metrics.encode(&mut text);

        for line in [
            "submission_helper_apiserver_requests_total{verb=\"watch\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"get\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"create\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"delete\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
