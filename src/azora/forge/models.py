"""Tables of the ``azora_forge`` database: the jobs marketplace and its contracts."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum, utcnow
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin
from azora.types import Currency


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class JobType(StrEnum):
    FULL_TIME = "full_time"
    PART_TIME = "part_time"
    CONTRACT = "contract"
    GIG = "gig"


class JobStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ContractStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"


class MilestoneStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PAID = "paid"


class DisputeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    REJECTED = "rejected"


class Job(Entity, Base):
    """A job posted by an employer (``posted_by`` is an auth user id)."""

    __tablename__ = "jobs"

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column()
    company: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    job_type: Mapped[JobType] = mapped_column(str_enum(JobType, "job_type"))
    # Nullable: a job may be posted with the budget left open to negotiation.
    budget: Mapped[Decimal | None] = mapped_column()
    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"), default=Currency.AZR)
    skills: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[JobStatus] = mapped_column(
        str_enum(JobStatus, "status"), default=JobStatus.OPEN, index=True
    )
    posted_by: Mapped[uuid.UUID] = mapped_column(index=True)

    __table_args__ = (
        CheckConstraint("budget > 0", name="budget_positive"),
        Index("ix_jobs_created_at", "created_at"),
    )


class Application(Entity, Base):
    """A user's application to a job; one per user and job."""

    __tablename__ = "applications"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    status: Mapped[ApplicationStatus] = mapped_column(
        str_enum(ApplicationStatus, "status"), default=ApplicationStatus.PENDING
    )
    cover_letter: Mapped[str | None] = mapped_column()
    proposed_amount: Mapped[Decimal | None] = mapped_column()
    applied_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("job_id", "user_id"),
        CheckConstraint("proposed_amount > 0", name="proposed_amount_positive"),
    )


class Contract(Entity, Base):
    """An agreement between a client and a freelancer; its funds sit in mint escrow."""

    __tablename__ = "contracts"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    client_id: Mapped[uuid.UUID] = mapped_column(index=True)
    freelancer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    amount: Mapped[Decimal] = mapped_column()
    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"), default=Currency.AZR)
    status: Mapped[ContractStatus] = mapped_column(
        str_enum(ContractStatus, "status"), default=ContractStatus.ACTIVE, index=True
    )
    # The mint transaction that holds the funds (another database: no foreign key).
    escrow_transaction_id: Mapped[uuid.UUID | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    milestones: Mapped[list[Milestone]] = relationship(
        lazy="raise",
        order_by="Milestone.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class Milestone(Entity, Base):
    """A payable part of a contract, in order of ``position`` (from 1)."""

    __tablename__ = "milestones"

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column()
    due_date: Mapped[dt.date | None] = mapped_column()
    status: Mapped[MilestoneStatus] = mapped_column(
        str_enum(MilestoneStatus, "status"), default=MilestoneStatus.PENDING
    )
    # The mint transaction that released the payment (another database: no foreign key).
    paid_transaction_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("contract_id", "position"),
        CheckConstraint("position >= 1", name="position_positive"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class Dispute(Entity, Base):
    """A disagreement raised on a contract by one of its parties."""

    __tablename__ = "disputes"

    contract_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contracts.id"), index=True)
    raised_by: Mapped[uuid.UUID] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column()
    status: Mapped[DisputeStatus] = mapped_column(
        str_enum(DisputeStatus, "status"), default=DisputeStatus.OPEN, index=True
    )
    resolution: Mapped[str | None] = mapped_column()
    resolved_at: Mapped[dt.datetime | None] = mapped_column()


class SkillProfile(Entity, Base):
    """A user's skills and reputation on the marketplace (one per user)."""

    __tablename__ = "skill_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    skills: Mapped[list[str]] = mapped_column(default=list)
    experience_years: Mapped[int] = mapped_column(default=0)
    education: Mapped[str | None] = mapped_column()
    portfolio_url: Mapped[str | None] = mapped_column(String(2048))
    # Average rating from 0 to 5; NULL until the first rating.
    rating: Mapped[float | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("experience_years >= 0", name="experience_years_nonnegative"),
        CheckConstraint("rating >= 0 AND rating <= 5", name="rating_range"),
    )


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
