//! Submissions: what a user asks to run, parsed once at the boundary into types that are valid
//! by construction, and the record the service keeps of each one.
//!
//! [`request`] is the body as sent (and its schema), [`defaults`] what the server fills in and
//! allows, [`parse`] turns the one with the other into a [`spec`], and [`record`] is a stored
//! submission with its progress.

mod attempt;
mod defaults;
mod labels;
mod parse;
mod queueing;
mod record;
mod request;
mod rerun;
mod rerun_plan;
mod resources;
mod retry_policy;
mod spec;
mod tes_plan;
mod waits_for;

pub use attempt::{Attempt, PodEnd};
pub use defaults::{AllowLists, DEFAULT_CLUSTER, JobDefaults, SubmitDefaults};
pub use labels::{
    APP_LABEL, APP_LABEL_VALUE, IDENTIFIER_LABEL, LABEL_PREFIX, NAME_LABEL, OWNER_LABEL,
    SUBMISSION_ID_LABEL,
};
pub(crate) use parse::parse_cluster;
pub use parse::{MAX_BACKOFF_LIMIT, MAX_COMMAND_BYTES, NewSubmissions, SentAs};
pub(crate) use queueing::parse as parse_queueing;
pub use queueing::{
    ADMISSION_GATE, ADMISSION_GATE_ANNOTATION, KueueDefaults, PRIORITY_CLASS_LABEL,
    QUEUE_NAME_LABEL, Queueing,
};
pub use record::{JobRef, Progress, Submission, WorkLimits};
pub use request::{Cpus, SubmissionRequest};
pub use rerun::{AfterOom, RerunChanges, after_oom, job_name as rerun_job_name, not_rerunnable};
pub use rerun_plan::{Held, RerunPlan, plan_rerun};
pub use resources::{Amounts, Resources};
pub use retry_policy::{
    ExitCodeAction, ExitCodeRule, OOM_EXIT_CODE, OnOom, RetryPolicy, check as check_retry_policy,
};
pub use spec::{DEFAULT_TOOL, SubmissionSpec, Volume};
pub use tes_plan::{ClaimInput, ExecutorPlan, InlineInput, OutputPlan, TesPlan};
pub use waits_for::WaitsFor;
