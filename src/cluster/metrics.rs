//! What the cluster side does, for `/metrics`: reconciles (how many, how many failed, how many
//! wait), the lag from a change the watch saw to the state recorded, how long a submission
//! waits for its Job and a Job for its pod to run, and the requests the service sends the API
//! server and what it answered (at rest these are the watches alone), and how often the
//! watches failed or had to start over with a full list.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::watcher::{self, Event};
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Watched {
    /// `jobs` or `pods`.
    pub resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterName {
    pub cluster: String,
}

/// The resources the controller watches.
const WATCHED: [&str; 2] = ["jobs", "pods"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RerunCause {
    /// `memory` (a kill for memory under `retry_policy.on_oom`), `request` (a user's rerun,
    /// with what came back with it) or `cluster_lost` (moved off a cluster that stopped
    /// answering for `--cluster-lost-after`).
    pub cause: &'static str,
}

/// The causes of [`RerunCause`].
const RERUN_CAUSES: [&str; 3] = ["memory", "request", "cluster_lost"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Answer {
    /// As [`Verb::verb`].
    pub verb: &'static str,
    /// The HTTP status the API server answered (`200`, `404`, `409`, `503`...), or `none` when
    /// no answer came (unreachable, timed out). The API server answers a few dozen codes at
    /// most, so the label stays small.
    pub code: String,
}

/// The verbs of [`Verb`], each with the status the API server answers when it succeeds.
const VERBS: [(&str, &str); 5] = [
    ("watch", "200"),
    ("get", "200"),
    ("create", "201"),
    ("delete", "200"),
    ("update", "200"),
];

/// The cluster side's metrics. Shared by the controller, the client and `/metrics`.
#[derive(Debug)]
pub struct ClusterMetrics {
    pub reconciles: Family<Outcome, Counter>,
    pub queue_depth: Gauge,
    pub in_flight: Gauge,
    pub lag: Histogram,
    pub api_requests: Family<Verb, Counter>,
    pub api_answers: Family<Answer, Counter>,
    pub submit_to_job_created: Histogram,
    pub job_created_to_running: Histogram,
    /// Full lists a watch started over with, past its first (it lost its place).
    pub watch_restarts: Family<Watched, Counter>,
    /// Errors a watch met (it retries with a backoff).
    pub watch_errors: Family<Watched, Counter>,
    /// Submissions run again under their id, by cause.
    pub reruns: Family<RerunCause, Counter>,
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        let reconciles = Family::<Outcome, Counter>::default();
        // 1 ms to about 65 s.
        let lag = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let api_requests = Family::<Verb, Counter>::default();
        let api_answers = Family::<Answer, Counter>::default();
        // 10 ms to about 87 minutes: it includes the wait behind concurrency limits.
        let submit_to_job_created = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        // 100 ms to about 55 minutes: scheduling, image pulls, the pod's start.
        let job_created_to_running = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        let watch_restarts = Family::<Watched, Counter>::default();
        let watch_errors = Family::<Watched, Counter>::default();
        for resource in WATCHED {
            watch_restarts
                .get_or_create(&Watched { resource })
                .inc_by(0);
            watch_errors.get_or_create(&Watched { resource }).inc_by(0);
        }
        // Every known label value starts at 0, so a rate is 0 rather than missing before the
        // first event (and every series the dashboard and alerts use is there from the start).
        for result in ["ok", "error"] {
            reconciles.get_or_create(&Outcome { result }).inc_by(0);
        }
        let reruns = Family::<RerunCause, Counter>::default();
        for cause in RERUN_CAUSES {
            reruns.get_or_create(&RerunCause { cause }).inc_by(0);
        }
        for (verb, success) in VERBS {
            api_requests.get_or_create(&Verb { verb }).inc_by(0);
            api_answers
                .get_or_create(&Answer {
                    verb,
                    code: success.to_owned(),
                })
                .inc_by(0);
        }
        ClusterMetrics {
            reconciles,
            queue_depth: Gauge::default(),
            in_flight: Gauge::default(),
            lag,
            api_requests,
            api_answers,
            submit_to_job_created,
            job_created_to_running,
            watch_restarts,
            watch_errors,
            reruns,
        }
    }
}

impl ClusterMetrics {
    /// Adds these metrics to the registry `/metrics` encodes.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconciles",
            "Reconciles of a submission with its Job and pods, by result",
            self.reconciles.clone(),
        );
        registry.register(
            "reconcile_queue_depth",
            "Submissions waiting to be reconciled (due now or backing off)",
            self.queue_depth.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now",
            self.in_flight.clone(),
        );
        registry.register(
            "reconcile_lag_seconds",
            "From a Job or pod event to its submission's recorded change, including the 200 ms a reconcile waits for the events that follow",
            self.lag.clone(),
        );
        registry.register(
            "apiserver_requests",
            "Requests sent to the Kubernetes API server, by verb",
            self.api_requests.clone(),
        );
        registry.register(
            "apiserver_responses",
            "Answers of the Kubernetes API server, by verb and HTTP status (`none`: no answer)",
            self.api_answers.clone(),
        );
        registry.register(
            "submit_to_job_created_seconds",
            "From a submission stored to its Job created (waiting behind limits and dependencies included)",
            self.submit_to_job_created.clone(),
        );
        registry.register(
            "job_created_to_running_seconds",
            "From a Job created to its submission recorded running (a pod of it runs)",
            self.job_created_to_running.clone(),
        );
        registry.register(
            "watch_restarts",
            "Times a watch of the cluster started over with a full list, past its first, by resource",
            self.watch_restarts.clone(),
        );
        registry.register(
            "watch_errors",
            "Errors a watch of the cluster met before retrying, by resource",
            self.watch_errors.clone(),
        );
        registry.register(
            "reruns",
            "Submissions run again under their id, by cause (memory: a kill under on_oom; request: a user's rerun; cluster_lost: moved off a lost cluster)",
            self.reruns.clone(),
        );
    }

    /// What a watch of `resource` calls with each item it yields, to count its errors and
    /// its restarts (every `Init` past the first starts a full list over).
    pub fn watch_observer<K>(
        self: &Arc<Self>,
        resource: &'static str,
    ) -> impl FnMut(&Result<Event<K>, watcher::Error>) + Send + 'static {
        let metrics = self.clone();
        let mut started = false;
        move |item| match item {
            Ok(Event::Init) if started => {
                metrics
                    .watch_restarts
                    .get_or_create(&Watched { resource })
                    .inc();
            }
            Ok(Event::Init) => started = true,
            Ok(_) => {}
            Err(_) => {
                metrics
                    .watch_errors
                    .get_or_create(&Watched { resource })
                    .inc();
            }
        }
    }

    /// Counts one request to the API server and returns its verb; a layer of the kube client
    /// calls it.
    pub fn count_request<B>(&self, request: &Request<B>) -> &'static str {
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
        verb
    }

    /// Counts the API server's answer to a request of `verb` (`None`: no answer came).
    pub fn count_answer(&self, verb: &'static str, status: Option<http::StatusCode>) {
        let code = status.map_or_else(|| "none".to_owned(), |status| status.as_str().to_owned());
        self.api_answers.get_or_create(&Answer { verb, code }).inc();
    }
}

/// A tower layer for the kube client that counts every request it sends and every answer.
#[derive(Clone)]
pub struct CountingLayer(pub Arc<ClusterMetrics>);

impl<S> tower::Layer<S> for CountingLayer {
    type Service = Counting<S>;

    fn layer(&self, inner: S) -> Counting<S> {
        Counting {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The kube client's service, counted (see [`CountingLayer`]).
#[derive(Clone)]
pub struct Counting<S> {
    inner: S,
    metrics: Arc<ClusterMetrics>,
}

impl<S, B> tower::Service<Request<Body>> for Counting<S>
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verb = self.metrics.count_request(&request);
        let answer = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let answer = answer.await;
            metrics.count_answer(verb, answer.as_ref().ok().map(Response::status));
            answer
        })
    }
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

    /// The metrics as `/metrics` shows them, in a registry of their own.
    fn encoded(metrics: &ClusterMetrics) -> String {
        let mut registry = Registry::with_prefix("submission_helper");
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("encoded");
        text
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

        let text = encoded(&metrics);

        for line in [
            "submission_helper_apiserver_requests_total{verb=\"watch\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"get\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"create\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"delete\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_watchs_errors_and_restarts_are_counted_but_not_its_first_list() {
        let metrics = Arc::new(ClusterMetrics::default());
        let mut observe = metrics.watch_observer::<()>("pods");
        let failed: Result<Event<()>, watcher::Error> = Err(watcher::Error::NoResourceVersion);

        for item in [
            Ok(Event::Init),
            Ok(Event::InitDone),
            Ok(Event::Apply(())),
            failed,
            Ok(Event::Init),
            Ok(Event::InitDone),
        ] {
            observe(&item);
        }
        let text = encoded(&metrics);

        for line in [
            "submission_helper_watch_restarts_total{resource=\"pods\"} 1",
            "submission_helper_watch_errors_total{resource=\"pods\"} 1",
            "submission_helper_watch_restarts_total{resource=\"jobs\"} 0",
            "submission_helper_watch_errors_total{resource=\"jobs\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    /// Through the layer as the kube client uses it: a conflict, a success and no answer at all.
    #[tokio::test]
    async fn answers_are_counted_by_verb_and_status_and_no_answer_as_none() {
        use tower::{Layer, ServiceExt};
        let metrics = Arc::new(ClusterMetrics::default());
        let api_server = tower::service_fn(|request: Request<Body>| async move {
            match request.method().as_str() {
                "POST" => Ok(Response::builder()
                    .status(http::StatusCode::CONFLICT)
                    .body(())
                    .expect("response")),
                "GET" => Ok(Response::new(())),
                _ => Err("connection refused"),
            }
        });
        let counted = CountingLayer(metrics.clone()).layer(api_server);
        let jobs = "/apis/batch/v1/namespaces/default/jobs";

        for (method, uri) in [
            ("POST", jobs.to_owned()),
            ("GET", jobs.to_owned()),
            ("DELETE", format!("{jobs}/sh-1")),
        ] {
            let _ = counted.clone().oneshot(request(method, &uri)).await;
        }
        let text = encoded(&metrics);

        for line in [
            "submission_helper_apiserver_responses_total{verb=\"create\",code=\"409\"} 1",
            "submission_helper_apiserver_responses_total{verb=\"get\",code=\"200\"} 1",
            "submission_helper_apiserver_responses_total{verb=\"delete\",code=\"none\"} 1",
            "submission_helper_apiserver_requests_total{verb=\"create\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
