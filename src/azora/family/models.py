"""Tables of the ``azora_family`` database."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class MessageRole(StrEnum):
    """Who wrote a message: the user or the family member."""

    USER = "user"
    MEMBER = "member"


class FamilyMember(Entity, Base):
    """One of the AI family members: who they are and how they speak."""

    __tablename__ = "family_members"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(120))
    traits: Mapped[list[str]] = mapped_column(default=list)
    background: Mapped[str] = mapped_column()
    #: member name → relation, from this member's point of view.
    relationships: Mapped[dict[str, Any]] = mapped_column(default=dict)
    temperature: Mapped[float] = mapped_column(default=0.8)
    mood: Mapped[str] = mapped_column(String(32), default="neutral")
    avatar_url: Mapped[str | None] = mapped_column(String(2048))

    __table_args__ = (
        CheckConstraint("temperature >= 0 AND temperature <= 2", name="temperature_range"),
    )


class Conversation(Entity, Base):
    """A user's conversation with one family member."""

    __tablename__ = "conversations"

    # Members are permanent; a member with conversations cannot be deleted by accident.
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_members.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)

    messages: Mapped[list[Message]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by=lambda: (Message.created_at, Message.id),
    )

    __table_args__ = (Index("ix_conversations_updated_at", "updated_at"),)


class Message(Entity, Base):
    """One message of a conversation, from the user or from the member."""

    __tablename__ = "messages"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    #: the member who wrote the message, or to whom the user wrote it.
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_members.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column()
    role: Mapped[MessageRole] = mapped_column(str_enum(MessageRole, "role"))
    content: Mapped[str] = mapped_column()
    #: the member's mood when speaking; empty for the user's messages.
    mood: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    # Leads with conversation_id, so it also serves as that foreign key's index.
    __table_args__ = (
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),
    )


class FamilyInteraction(Entity, Base):
    """A recorded interaction between a user and a member (named, not linked: history stays)."""

    __tablename__ = "family_interactions"

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    member_name: Mapped[str] = mapped_column(String(64))
    interaction: Mapped[str] = mapped_column(String(120))
    #: from -1 (negative) to 1 (positive); empty when not scored.
    sentiment: Mapped[float | None] = mapped_column()
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    __table_args__ = (
        CheckConstraint("sentiment >= -1 AND sentiment <= 1", name="sentiment_range"),
    )


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
