//! The submissions one request asks for, alone or in a batch, parsed together: each one's
//! fields, and what each one's `depends_on` names (another submission of the request by its
//! name, or a stored one by its id), with no circle among them. Whose the stored ones are is
//! the one thing left to check, since only storage knows.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::domain::campaign::{self, Dependency};
use crate::domain::field_error::FieldError;
use crate::domain::identity::Caller;
use crate::domain::submission::defaults::SubmitDefaults;
use crate::domain::submission::record::Submission;
use crate::domain::submission::request::SubmissionRequest;
use crate::domain::submission_id::SubmissionId;

use super::fields::Fields;

/// How a request sent its submissions, which decides how an error names a field: alone
/// (`image`), or in a batch (`submissions[3].image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentAs {
    Alone,
    Batch,
}

impl SentAs {
    /// The `index`-th submission's `field`, as an error names it.
    pub fn field(self, index: usize, field: &str) -> String {
        match self {
            SentAs::Alone => field.to_owned(),
            SentAs::Batch => format!("submissions[{index}].{field}"),
        }
    }

    /// The `index`-th submission itself, as an error names it.
    fn submission(self, index: usize) -> String {
        match self {
            SentAs::Alone => "the submission".to_owned(),
            SentAs::Batch => format!("submissions[{index}]"),
        }
    }
}

/// The submissions of one request, parsed: each with a new id, every default resolved, and
/// `depends_on` resolved to ids. Only [`NewSubmissions::owned`] gives them out, once storage
/// has said whose the stored submissions they depend on are.
#[derive(Debug)]
pub struct NewSubmissions {
    submissions: Vec<Submission>,
    /// For each submission, the stored submissions its `depends_on` names, and where.
    stored: Vec<Vec<(usize, SubmissionId)>>,
    sent_as: SentAs,
}

impl NewSubmissions {
    /// Parses the submissions `caller` sends, to run in `namespace`, collecting every bad
    /// field of every one of them at once: each submission's own fields and `depends_on`
    /// entries in order, then the submissions that depend on one another in a circle.
    pub fn parse(
        requests: Vec<SubmissionRequest>,
        sent_as: SentAs,
        defaults: &SubmitDefaults,
        namespace: &str,
        caller: &Caller,
    ) -> Result<Self, Vec<FieldError>> {
        let mut names = Vec::with_capacity(requests.len());
        let mut specs = Vec::with_capacity(requests.len());
        let mut entries = Vec::with_capacity(requests.len());
        for request in requests {
            let fields = Fields::parse(request, defaults);
            names.push(fields.name);
            specs.push(fields.spec);
            entries.push(fields.depends_on);
        }

        let resolved = if entries.iter().all(Vec::is_empty) {
            Ok(vec![Vec::new(); entries.len()])
        } else {
            let named: Vec<(Option<&str>, &[String])> = names
                .iter()
                .zip(&entries)
                .map(|(name, entries)| (name.as_deref(), entries.as_slice()))
                .collect();
            campaign::resolve(&named)
        };
        let (resolved, unresolved) = match resolved {
            Ok(resolved) => (Some(resolved), Vec::new()),
            Err(unresolved) => (None, unresolved),
        };

        let mut errors = Vec::new();
        let mut unresolved = unresolved.into_iter().peekable();
        let mut parsed = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            match spec {
                Ok(spec) => parsed.push(spec),
                Err(wrong) => errors.extend(wrong.into_iter().map(|error| {
                    FieldError::new(sent_as.field(index, &error.field), error.reason)
                })),
            }
            while let Some((_, error)) = unresolved.next_if(|(at, _)| *at == index) {
                errors.push(FieldError::new(
                    sent_as.field(index, &error.field),
                    error.reason,
                ));
            }
        }
        if let Some(circle) = resolved.as_deref().and_then(campaign::cycle) {
            let named = |index: &usize| match &names[*index] {
                Some(name) => format!("{} ({name})", sent_as.submission(*index)),
                None => sent_as.submission(*index),
            };
            let path: Vec<String> = circle.iter().chain(circle.first()).map(named).collect();
            let reason = format!("depends on itself through {}", path.join(" -> "));
            errors.extend(
                circle
                    .iter()
                    .map(|index| FieldError::new(sent_as.field(*index, "depends_on"), &reason)),
            );
        }
        let Some(resolved) = resolved.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };

        let mut submissions: Vec<Submission> = parsed
            .into_iter()
            .map(|spec| Submission::new(spec, namespace, caller))
            .collect();
        let ids: Vec<SubmissionId> = submissions.iter().map(|submission| submission.id).collect();
        let mut stored = Vec::with_capacity(submissions.len());
        for ((submission, dependencies), entries) in
            submissions.iter_mut().zip(resolved).zip(&entries)
        {
            let ids_stored: HashSet<SubmissionId> = dependencies
                .iter()
                .filter_map(|dependency| match dependency {
                    Dependency::Stored(id) => Some(*id),
                    Dependency::Sent(_) => None,
                })
                .collect();
            stored.push(
                entries
                    .iter()
                    .enumerate()
                    .filter_map(|(position, entry)| {
                        let id = entry.parse::<SubmissionId>().ok()?;
                        ids_stored.contains(&id).then_some((position, id))
                    })
                    .collect(),
            );
            submission.spec.depends_on = dependencies
                .into_iter()
                .map(|dependency| match dependency {
                    Dependency::Sent(index) => ids[index],
                    Dependency::Stored(id) => id,
                })
                .collect();
        }
        Ok(NewSubmissions {
            submissions,
            stored,
            sent_as,
        })
    }

    /// The submissions, to look at before they are given out.
    pub fn submissions(&self) -> &[Submission] {
        &self.submissions
    }

    /// The `index`-th submission's `field`, as an error names it.
    pub fn field(&self, index: usize, field: &str) -> String {
        self.sent_as.field(index, field)
    }

    /// The stored submissions they depend on, each once: storage says whose they are.
    pub fn stored_dependencies(&self) -> Vec<SubmissionId> {
        self.stored
            .iter()
            .flatten()
            .map(|(_, id)| *id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The submissions, if every stored submission they depend on is their owner's: `owners`
    /// names the owner of each of [`Self::stored_dependencies`] that exists. Another user's
    /// submission is as unknown as one that does not exist.
    pub fn owned(
        self,
        owners: &HashMap<SubmissionId, String>,
    ) -> Result<Vec<Submission>, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (index, (submission, stored)) in self.submissions.iter().zip(&self.stored).enumerate() {
            for (position, id) in stored {
                if owners.get(id) != Some(&submission.owner) {
                    errors.push(FieldError::new(
                        self.sent_as
                            .field(index, &format!("depends_on[{position}]")),
                        format!("there is no submission {id} of {}", submission.owner),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(self.submissions)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            user: "alice".into(),
            submitted_by: "alice".into(),
            admin: false,
            max_concurrent: None,
            token: None,
        }
    }

    fn request(name: &str, depends_on: &[&str]) -> SubmissionRequest {
        SubmissionRequest {
            name: Some(name.into()),
            image: Some("atlas/analysisbase:21.2.171".into()),
            command: Some("true".into()),
            depends_on: depends_on.iter().map(|entry| (*entry).to_owned()).collect(),
            ..SubmissionRequest::default()
        }
    }

    fn parse(requests: Vec<SubmissionRequest>) -> Result<NewSubmissions, Vec<FieldError>> {
        NewSubmissions::parse(
            requests,
            SentAs::Batch,
            &SubmitDefaults::default(),
            "jobs",
            &caller(),
        )
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|error| error.field.as_str()).collect()
    }

    #[test]
    fn names_in_a_batch_become_the_ids_of_the_submissions_they_name() {
        let stored = SubmissionId::new();
        let requests = vec![
            request("sample", &[]),
            request("merge", &["sample", &stored.to_string()]),
        ];

        let parsed = parse(requests).expect("valid");

        let submissions = parsed.submissions();
        assert_eq!(submissions[1].spec.depends_on, [submissions[0].id, stored]);
        assert_eq!(parsed.stored_dependencies(), [stored]);
    }

    #[test]
    fn each_submission_reports_its_own_fields_then_its_dependencies_by_its_place() {
        let mut no_image = request("a", &["nothing-by-this-name"]);
        no_image.image = Some(String::new());
        let mut no_command = request("b", &[]);
        no_command.command = None;

        let errors = parse(vec![no_image, no_command]).expect_err("invalid");

        assert_eq!(
            fields(&errors),
            [
                "submissions[0].image",
                "submissions[0].depends_on[0]",
                "submissions[1].command"
            ]
        );
    }

    #[test]
    fn a_circle_is_refused_on_each_of_its_members_naming_the_way_round() {
        let requests = vec![request("a", &["b"]), request("b", &["a"])];

        let errors = parse(requests).expect_err("a circle");

        assert_eq!(
            fields(&errors),
            ["submissions[0].depends_on", "submissions[1].depends_on"]
        );
        assert_eq!(
            errors[0].reason,
            "depends on itself through submissions[0] (a) -> submissions[1] (b) -> submissions[0] (a)"
        );
    }

    #[test]
    fn a_stored_dependency_of_another_user_is_as_unknown_as_none() {
        let mine = SubmissionId::new();
        let theirs = SubmissionId::new();
        let missing = SubmissionId::new();
        let requests = vec![request(
            "merge",
            &[&mine.to_string(), &theirs.to_string(), &missing.to_string()],
        )];
        let owners = HashMap::from([(mine, "alice".to_owned()), (theirs, "bob".to_owned())]);

        let errors = parse(requests)
            .expect("valid")
            .owned(&owners)
            .expect_err("not all alice's");

        assert_eq!(
            fields(&errors),
            [
                "submissions[0].depends_on[1]",
                "submissions[0].depends_on[2]"
            ]
        );
        assert_eq!(
            errors[0].reason,
            format!("there is no submission {theirs} of alice")
        );
    }

    #[test]
    fn a_submission_sent_alone_names_its_fields_without_a_place() {
        let mut lone = request("lone", &["lone"]);
        lone.command = None;

        let errors = NewSubmissions::parse(
            vec![lone],
            SentAs::Alone,
            &SubmitDefaults::default(),
            "jobs",
            &caller(),
        )
        .expect_err("invalid");

        assert_eq!(fields(&errors), ["command", "depends_on[0]"]);
        assert!(errors[1].reason.contains("itself"), "{errors:?}");
    }
}
