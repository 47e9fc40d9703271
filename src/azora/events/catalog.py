"""One payload schema for every event type of EVENTS.md, registered in :data:`CATALOG`.

Payloads describe what happened, by id; they never carry a password, token, code or
secret, and never another service's table rows. Types the services emit today match their
emitters' keys exactly (``azora.auth.events``, ``azora.education.courses``,
``azora.mint.events`` and its callers); the others state what their emitter will need.
A user-scoped type's events go to its ``subject`` only; a public type's to every
subscriber.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import Field

from azora.events.fields import (
    Count,
    Flag,
    Id,
    Money,
    Name,
    Payload,
    Percent,
    Text,
    Timestamp,
)
from azora.events.registry import Audience, EventType, Registry
from azora.types import Currency

PUBLIC, USER = Audience.PUBLIC, Audience.USER


class UserPayload(Payload):
    """A payload about one user, who is also the event's subject."""

    user_id: Id


# -- system / auth -------------------------------------------------------------------


class UserRegistered(UserPayload):
    email: Text
    name: Name
    role: Name


class UserLogin(UserPayload):
    session_id: Id
    method: Name  # "password" or "identity"


class MfaEnabled(UserPayload):
    method: Name  # "totp"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class Alert(Payload):
    severity: AlertSeverity
    message: Text
    component: Name | None = None  # the service or part that raised it
    details: dict[str, str | int | bool | None] = Field(default_factory=dict)


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


class HealthCheck(Payload):
    component: Name
    status: HealthStatus
    latency_ms: Count | None = None
    detail: Text | None = None


# -- education -----------------------------------------------------------------------


class CoursePublished(Payload):
    course_id: Id
    instructor_id: Id
    title: Name
    category: Name
    level: Name
    price: Money
    currency: Currency


class EnrollmentPayload(UserPayload):
    enrollment_id: Id
    course_id: Id


class ProgressUpdated(EnrollmentPayload):
    progress: Percent


class ModuleCompleted(UserPayload):
    course_id: Id
    module_id: Id
    score: Percent | None = None


class AssessmentSubmitted(UserPayload):
    assessment_id: Id
    submission_id: Id
    course_id: Id
    module_id: Id | None = None
    score: Percent | None = None
    passed: Flag


class CertificateIssued(UserPayload):
    certificate_id: Id
    course_id: Id


# -- finance (mint) ------------------------------------------------------------------


class WalletCreated(UserPayload):
    currency: Currency


class TransactionCompleted(Payload):
    transaction_id: Id
    type: Name
    amount: Money
    currency: Currency
    reference: Text | None = None
    from_user: Id | None = None  # absent when the source is a system wallet
    to_user: Id | None = None


class TransactionFailed(Payload):
    type: Name
    amount: Money
    currency: Currency
    reason: Text
    reference: Text | None = None
    from_user: Id | None = None
    to_user: Id | None = None


class StakeCreated(UserPayload):
    stake_id: Id
    amount: Money
    currency: Currency
    lock_days: Count
    unlocks_at: Timestamp


class StakeReleased(UserPayload):
    stake_id: Id
    amount: Money
    currency: Currency


class MiningReward(UserPayload):
    activity: Name
    proof_ref: Text
    amount: Money
    currency: Currency
    transaction_id: Id


class UbiDistributed(Payload):
    period: Name
    currency: Currency
    amount_per_wallet: Money
    wallets_paid: Count
    total: Money
    transaction_id: Id


# -- marketplace (forge) -------------------------------------------------------------


class JobPosted(Payload):
    job_id: Id
    posted_by: Id
    title: Name
    job_type: Name
    budget: Money | None = None
    currency: Currency
    skills: list[Name] = Field(default_factory=list)


class ApplicationPayload(Payload):
    application_id: Id
    job_id: Id
    applicant_id: Id  # the freelancer
    client_id: Id  # who posted the job


class ContractSigned(Payload):
    contract_id: Id
    job_id: Id
    client_id: Id
    freelancer_id: Id
    amount: Money
    currency: Currency


class MilestoneApproved(Payload):
    milestone_id: Id
    contract_id: Id
    client_id: Id
    freelancer_id: Id
    amount: Money
    currency: Currency


class PaymentReleased(Payload):
    contract_id: Id
    milestone_id: Id | None = None
    freelancer_id: Id
    amount: Money
    currency: Currency
    transaction_id: Id


class DisputeOpened(Payload):
    dispute_id: Id
    contract_id: Id
    raised_by: Id
    reason: Text


# -- tutoring (sapiens) --------------------------------------------------------------


class TutoringSessionPayload(UserPayload):
    session_id: Id
    subject: Name  # the topic studied, e.g. "algebra"


class TutoringSessionEnded(TutoringSessionPayload):
    duration_seconds: Count


class InsightCreated(UserPayload):
    insight_id: Id
    session_id: Id
    insight_type: Name
    description: Text


class PathStepCompleted(UserPayload):
    path_id: Id
    step_id: Id
    position: Count
    completed_steps: Count
    total_steps: Count


# -- family --------------------------------------------------------------------------


class ConversationStarted(UserPayload):
    conversation_id: Id
    member_id: Id


class FamilyMessageSent(UserPayload):
    conversation_id: Id
    message_id: Id
    member_id: Id
    role: Name  # who wrote it: the user or the family member


class MoodChanged(UserPayload):
    member_id: Id
    mood: Name
    previous_mood: Name | None = None


# -- notifications -------------------------------------------------------------------


class NotificationCreated(UserPayload):
    notification_id: Id
    kind: Name
    title: Name


class NotificationRead(UserPayload):
    notification_id: Id


_TYPES: Final[list[tuple[str, type[Payload], Audience, str]]] = [
    ("system.user.registered", UserRegistered, USER, "A user account was created."),
    ("system.user.login", UserLogin, USER, "A user signed in (a new session)."),
    ("system.user.mfa_enabled", MfaEnabled, USER, "A user confirmed a second factor."),
    ("system.alert", Alert, PUBLIC, "An operational alert for operators and dashboards."),
    ("system.health.check", HealthCheck, PUBLIC, "The result of one component's health check."),
    ("education.course.published", CoursePublished, PUBLIC, "A course became visible."),
    ("education.course.enrolled", EnrollmentPayload, USER, "A student enrolled in a course."),
    ("education.enrollment.progress_updated", ProgressUpdated, USER, "Progress % changed."),
    ("education.module.completed", ModuleCompleted, USER, "A student completed a module."),
    ("education.course.completed", EnrollmentPayload, USER, "A student completed a course."),
    ("education.assessment.submitted", AssessmentSubmitted, USER, "An assessment was handed in."),
    ("education.certificate.issued", CertificateIssued, USER, "A certificate was issued."),
    ("finance.wallet.created", WalletCreated, USER, "A user's wallet was opened."),
    # One event per user (not system) wallet a movement involves, each to its user.
    ("finance.transaction.completed", TransactionCompleted, USER, "Money moved."),
    ("finance.transaction.failed", TransactionFailed, USER, "A movement was refused."),
    ("finance.stake.created", StakeCreated, USER, "A user locked an amount as a stake."),
    ("finance.stake.released", StakeReleased, USER, "A stake returned to its wallet."),
    ("finance.mining.reward", MiningReward, USER, "A Proof-of-Knowledge reward was paid."),
    ("finance.ubi.distributed", UbiDistributed, PUBLIC, "A period's basic income was paid."),
    ("marketplace.job.posted", JobPosted, PUBLIC, "A job was posted on the marketplace."),
    # Subject: the job's client (submitted), the freelancer (accepted).
    ("marketplace.application.submitted", ApplicationPayload, USER, "A freelancer applied."),
    ("marketplace.application.accepted", ApplicationPayload, USER, "An application won."),
    ("marketplace.contract.signed", ContractSigned, USER, "A contract was signed (escrow)."),
    ("marketplace.milestone.approved", MilestoneApproved, USER, "A milestone was approved."),
    ("marketplace.payment.released", PaymentReleased, USER, "Escrow paid the freelancer."),
    ("marketplace.dispute.opened", DisputeOpened, USER, "A party opened a dispute."),
    ("tutoring.session.started", TutoringSessionPayload, USER, "A tutoring session began."),
    ("tutoring.session.ended", TutoringSessionEnded, USER, "A tutoring session ended."),
    ("tutoring.insight.created", InsightCreated, USER, "The tutor noted a learning insight."),
    ("tutoring.path.step_completed", PathStepCompleted, USER, "A path step was completed."),
    ("family.conversation.started", ConversationStarted, USER, "A conversation began."),
    ("family.message.sent", FamilyMessageSent, USER, "A message was added to a conversation."),
    ("family.member.mood_changed", MoodChanged, USER, "A family member's mood changed."),
    ("notification.created", NotificationCreated, USER, "A notification was created."),
    ("notification.read", NotificationRead, USER, "A notification was marked as read."),
]


def build_catalog() -> Registry:
    """A new registry holding every type of EVENTS.md at version 1."""
    registry = Registry()
    for name, payload, audience, description in _TYPES:
        registry.register(EventType(name, payload, audience, description))
    return registry


CATALOG: Final[Registry] = build_catalog()
"""The registry the unit of work and :func:`azora.events.publish.publish` check against."""
