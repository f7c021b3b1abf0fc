//! Requests to reconcile a submission: the watches, the archiver and the controller itself
//! (a retry, a stuck pod's deadline) ask through [`Triggers`]; the controller's loop drains the
//! [`Receiver`] into kube's scheduler.

use std::time::Duration;

use kube::runtime::scheduler::ScheduleRequest;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::domain::SubmissionId;

/// How long a change a watch saw waits for the ones that follow it. A Job and its pod change
/// in bursts: a pod's creation, scheduling, start and end each move the Job's status after
/// them, about ten events per Job in all; one reconcile per burst reads the row once instead of
/// once per event. Kubernetes's job controller batches its pod events per Job the same way, for
/// a second; this is short enough that the recorded state trails the cluster by less than a
/// second.
pub const COALESCE: Duration = Duration::from_millis(200);

/// Where anyone asks for a submission to be reconciled. Cheap to clone.
#[derive(Clone)]
pub struct Triggers(mpsc::UnboundedSender<Trigger>);

/// A request to reconcile `id`, and when the change behind it was seen (for the lag metric).
pub struct Trigger {
    pub id: SubmissionId,
    pub seen: Instant,
    pub run_at: Instant,
}

impl Trigger {
    /// What kube's scheduler is handed: it keeps the earliest `run_at` of a submission's
    /// requests, which is what makes a burst of [`Triggers::observed`] one reconcile.
    pub fn request(&self) -> ScheduleRequest<SubmissionId> {
        ScheduleRequest {
            message: self.id,
            run_at: self.run_at,
        }
    }
}

/// The receiving end of [`Triggers`].
pub struct Receiver(pub mpsc::UnboundedReceiver<Trigger>);

impl Triggers {
    /// The handle, and the receiving end the controller drains.
    pub fn new() -> (Self, Receiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Triggers(sender), Receiver(receiver))
    }

    /// Reconciles `id` as soon as possible.
    pub fn reconcile(&self, id: SubmissionId) {
        self.at(id, Instant::now());
    }

    /// Reconciles `id` after a watch saw its Job or a pod of it change, once [`COALESCE`] has
    /// passed: the changes that follow within it (a pod's next status, the Job's count of it)
    /// are read by the same reconcile, since the scheduler keeps a submission's earliest time.
    /// A reconcile asked for at once meanwhile (a cancel's) is not held back.
    pub fn observed(&self, id: SubmissionId) {
        self.at(id, Instant::now() + COALESCE);
    }

    /// Reconciles `id` at `run_at`.
    pub fn at(&self, id: SubmissionId, run_at: Instant) {
        self.send(Trigger {
            id,
            seen: Instant::now(),
            run_at,
        });
    }

    /// Asks again for a reconcile that failed, keeping when its change was first seen: the
    /// change is still unrecorded, so its lag keeps counting.
    pub fn retry(&self, id: SubmissionId, seen: Instant, run_at: Instant) {
        self.send(Trigger { id, seen, run_at });
    }

    fn send(&self, trigger: Trigger) {
        // Fails only once the controller is gone, when the service is stopping anyway.
        let _ = self.0.send(trigger);
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use kube::runtime::scheduler::scheduler;

    use super::*;

    /// The triggers drained into kube's scheduler as the controller's loop drains them, on
    /// tokio's paused clock.
    fn scheduled(Receiver(mut incoming): Receiver) -> impl futures::Stream<Item = SubmissionId> {
        let requests = futures::stream::poll_fn(move |context| incoming.poll_recv(context))
            .map(|trigger| trigger.request());
        scheduler(requests)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_watch_events_is_reconciled_once_after_the_window() {
        let (triggers, receiver) = Triggers::new();
        let id = SubmissionId::new();
        let start = Instant::now();
        let mut due = Box::pin(scheduled(receiver));
        for _ in 0..10 {
            triggers.observed(id);
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(due.next().await, Some(id));
        assert_eq!(
            start.elapsed(),
            COALESCE,
            "the first event's window decides"
        );
        drop(triggers);
        assert_eq!(due.next().await, None, "one reconcile for the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconcile_asked_for_at_once_is_not_held_back_by_the_window() {
        let (triggers, receiver) = Triggers::new();
        let (watched, cancelled) = (SubmissionId::new(), SubmissionId::new());
        let start = Instant::now();
        let mut due = Box::pin(scheduled(receiver));
        triggers.observed(watched);
        triggers.observed(cancelled);
        triggers.reconcile(cancelled);
        assert_eq!(due.next().await, Some(cancelled));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(due.next().await, Some(watched));
        assert_eq!(start.elapsed(), COALESCE);
        drop(triggers);
        assert_eq!(
            due.next().await,
            None,
            "the cancelled one is not reconciled again"
        );
    }
}
