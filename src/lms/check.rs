//! `edx-webhooks check`'s look at the LMS: three requests without side
//! effects, each answer read as EXTERNAL-CONTRACTS.md describes the LMS.

use super::bulk_enroll::{classify, BULK_ENROLL};
use super::{LmsClient, LmsError};
use crate::metrics::LmsCall;

/// One question asked of the LMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A client-credentials token request: are our client id and secret right?
    Token,
    /// An unauthenticated request to the bulk enrollment path: 401 on, 404 off.
    BulkEnrollView,
    /// An authenticated empty bulk enrollment POST: 400 for a staff user, 403 not.
    StaffUser,
}

impl Probe {
    pub fn title(self) -> &'static str {
        match self {
            Probe::Token => "LMS OAuth2 token",
            Probe::BulkEnrollView => "LMS bulk enrollment view",
            Probe::StaffUser => "LMS OAuth2 user is global staff",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// What was found right.
    Passed(String),
    /// What is wrong, and how to fix it.
    Failed(String),
    /// Not asked: an earlier answer makes this one meaningless.
    Skipped(String),
}

/// The answers, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsCheck {
    pub probes: Vec<(Probe, ProbeOutcome)>,
}

impl LmsClient {
    /// Asks the LMS whether it is set up for us, without enrolling anyone: a
    /// token request, an unauthenticated and an authenticated empty request to
    /// the bulk enrollment view.
    pub async fn check(&self) -> LmsCheck {
        let mut probes = Vec::with_capacity(3);
        let token = match self.token(true).await {
            Ok(token) => {
                let kind = token.header.split(' ').next().unwrap_or_default();
                let client = self.config.client_id.as_deref().unwrap_or_default();
                probes.push((
                    Probe::Token,
                    ProbeOutcome::Passed(format!("client {client} got a {kind} token")),
                ));
                true
            }
            Err(e) => {
                // No answer at all: the other questions would get none either.
                let unreachable = matches!(e, LmsError::Transient { status: None, .. });
                probes.push((Probe::Token, ProbeOutcome::Failed(self.problem(e))));
                if unreachable {
                    let why = ProbeOutcome::Skipped("the LMS is unreachable".into());
                    probes.push((Probe::BulkEnrollView, why.clone()));
                    probes.push((Probe::StaffUser, why));
                    return LmsCheck { probes };
                }
                false
            }
        };

        let view = self.probe_view().await;
        let view_on = matches!(view, ProbeOutcome::Passed(_));
        probes.push((Probe::BulkEnrollView, view));

        let staff = if !token {
            ProbeOutcome::Skipped("needs a token".into())
        } else if !view_on {
            ProbeOutcome::Skipped("needs the bulk enrollment view".into())
        } else {
            self.probe_staff().await
        };
        probes.push((Probe::StaffUser, staff));
        LmsCheck { probes }
    }

    async fn probe_view(&self) -> ProbeOutcome {
        let request = self.http.get(self.url(BULK_ENROLL));
        match self.exchange(LmsCall::BulkEnroll, request).await {
            Ok(answer) => match answer.status {
                401 => ProbeOutcome::Passed("enabled (401 without a token)".into()),
                404 => ProbeOutcome::Failed(
                    "disabled (404): set ENABLE_BULK_ENROLLMENT_VIEW: true (and \
                     ENABLE_COMBINED_LOGIN_REGISTRATION: true) in lms.yml, then restart the LMS"
                        .into(),
                ),
                status => ProbeOutcome::Failed(format!(
                    "{} answered {status} without a token, where the LMS answers 401 (view on) or \
                     404 (view off): check that EDX_WEBHOOKS_LMS_BASE_URL is the LMS",
                    self.url(BULK_ENROLL)
                )),
            },
            Err(e) => ProbeOutcome::Failed(self.problem(e)),
        }
    }

    async fn probe_staff(&self) -> ProbeOutcome {
        match self.post_bulk_enroll(&[]).await {
            Ok((400, _, _)) => ProbeOutcome::Passed(
                "the OAuth2 application's user may enroll learners (an empty request is answered 400)"
                    .into(),
            ),
            Ok((status, headers, body)) => {
                ProbeOutcome::Failed(self.problem(classify(status, &headers, &body)))
            }
            Err(e) => ProbeOutcome::Failed(self.problem(e)),
        }
    }

    /// An error as a problem for the operator, with what to do about it.
    fn problem(&self, error: LmsError) -> String {
        match error {
            LmsError::Transient { status: None, detail } => format!(
                "cannot reach the LMS at {}: {detail}: check EDX_WEBHOOKS_LMS_BASE_URL and that the LMS is running",
                self.shown_base()
            ),
            LmsError::Transient {
                status: Some(_),
                detail,
            } => format!("{detail}: the LMS has a problem of its own; see its logs"),
            LmsError::Throttled { retry_after } => format!(
                "the LMS throttles us (429) for {}s: run the check again later",
                retry_after.as_secs()
            ),
            LmsError::Misconfigured { reason, .. } => reason,
            LmsError::Permanent { status, detail } => {
                format!("the LMS answered {status}: {detail}")
            }
        }
    }

    /// The LMS base URL, without any password it carries.
    fn shown_base(&self) -> String {
        let mut base = self.base.clone();
        if base.password().is_some() {
            let _ = base.set_password(None);
        }
        base.to_string()
    }
}
