//! The domain: submissions, what makes one valid, and the states it goes through.
//!
//! Nothing here does I/O. The HTTP layer parses requests into these types, storage keeps them,
//! and the cluster side turns them into Jobs.

pub mod campaign;
mod field_error;
mod identity;
pub mod kube_rules;
pub mod notify;
pub mod placement;
mod state;
mod state_event;
mod submission;
mod submission_id;
pub mod tes;

pub use field_error::FieldError;
pub use identity::{Caller, parse_user_name};
pub use notify::{Notify, NotifyScope};
pub use state::{State, UnknownState};
pub use state_event::StateEvent;
pub use submission::{
    ADMISSION_GATE, ADMISSION_GATE_ANNOTATION, APP_LABEL, APP_LABEL_VALUE, AfterOom, AllowLists,
    Amounts, Attempt, ClaimInput, Cpus, DEFAULT_CLUSTER, DEFAULT_TOOL, ExecutorPlan,
    ExitCodeAction, ExitCodeRule, Held, IDENTIFIER_LABEL, InlineInput, JobDefaults, JobRef,
    KueueDefaults, LABEL_PREFIX, MAX_BACKOFF_LIMIT, MAX_COMMAND_BYTES, NAME_LABEL, NewSubmissions,
    OOM_EXIT_CODE, OWNER_LABEL, OnOom, OutputPlan, PRIORITY_CLASS_LABEL, PodEnd, Progress,
    QUEUE_NAME_LABEL, Queueing, RerunChanges, RerunPlan, Resources, RetryPolicy,
    SUBMISSION_ID_LABEL, SentAs, Submission, SubmissionRequest, SubmissionSpec, SubmitDefaults,
    TesPlan, Volume, WaitsFor, WorkLimits, after_oom, check_retry_policy, not_rerunnable,
    plan_rerun, rerun_job_name,
};
pub use submission_id::SubmissionId;
