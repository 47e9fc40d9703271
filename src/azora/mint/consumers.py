"""The mint's reactions to other services' events (the sagas of EVENTS.md).

- ``system.user.registered``: open the user's AZR wallet.
- ``education.module.completed`` / ``education.course.completed``: pay a
  Proof-of-Knowledge reward once per proof (the mining record's unique (activity, proof)
  holds even if two events announce the same completion) → ``finance.mining.reward``.
- ``marketplace.contract.signed``: hold the contract amount in escrow, from the client.
- ``marketplace.milestone.approved``: release the milestone's amount to the freelancer →
  ``marketplace.payment.released`` (and ``finance.transaction.completed``).

Each handler runs the mint's own operations inside the consumer's transaction (see
:mod:`azora.events.consumers`): :class:`_JoinedMint` hands them the consumer's unit of
work and takes the statement-by-statement path of a movement, because the PostgreSQL
``mint_move`` function would run on a connection (and a transaction) of its own. A
conflict is not retried inside (the transaction is spent): the runner retries the event.
Releasing before the hold arrived fails with ``EscrowShortfall`` and is retried the same
way until the hold is there.
"""

from __future__ import annotations

import functools
import uuid
from decimal import Decimal

from azora.db.joined import joined
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.catalog import (
    ContractSigned,
    EnrollmentPayload,
    MilestoneApproved,
    ModuleCompleted,
    UserRegistered,
)
from azora.events.consumers import Consumer, consumer
from azora.events.envelope import Envelope
from azora.mint import events
from azora.mint.service import MintService
from azora.types import Currency, ServiceName

#: Proof-of-Knowledge rewards, in AZR, paid from the reward pool.
MODULE_REWARD = Decimal("10")
COURSE_REWARD = Decimal("100")

PAYMENT_RELEASED = "marketplace.payment.released"


class _JoinedMint(MintService):
    """The mint's operations inside an open unit of work of the mint database."""

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow.databases, max_retries=0)
        self._outer = uow

    def unit_of_work(self) -> UnitOfWork:
        """The consumer's unit of work, joined: it commits (or rolls back) everything."""
        return joined(self._outer)

    @functools.cached_property
    def _posts_in_database(self) -> bool:
        return False  # mint_move commits on its own connection; the session path joins ours


def contract_reference(contract_id: uuid.UUID) -> str:
    """The transaction reference of a marketplace contract's escrow movements."""
    return f"contract:{contract_id}"


@consumer("mint-wallets", "system.user.registered", service=ServiceName.MINT)
async def open_wallet(uow: UnitOfWork, event: Envelope) -> None:
    """Open the new user's AZR wallet (announces ``finance.wallet.created``)."""
    payload = UserRegistered.model_validate(event.payload)
    await _JoinedMint(uow).open_wallet(payload.user_id, Currency.AZR)


@consumer("mint-learning-rewards", "education.*.completed", service=ServiceName.MINT)
async def reward_learning(uow: UnitOfWork, event: Envelope) -> None:
    """Pay the Proof-of-Knowledge reward of a completed module or course, once per proof.

    Opens the learner's wallet first if registration has not done it yet.
    """
    mint = _JoinedMint(uow)
    if event.type == "education.module.completed":
        module = ModuleCompleted.model_validate(event.payload)
        user_id, activity, amount = module.user_id, "module_completed", MODULE_REWARD
        proof = f"module:{module.module_id}:user:{module.user_id}"
    elif event.type == "education.course.completed":
        course = EnrollmentPayload.model_validate(event.payload)
        user_id, activity, amount = course.user_id, "course_completed", COURSE_REWARD
        proof = f"course:{course.course_id}:user:{course.user_id}"
    else:
        return  # another completion (none yet) earns nothing
    await mint.open_wallet(user_id, Currency.AZR)
    await mint.record_mining(user_id, activity, proof, amount, Currency.AZR)


@consumer("mint-escrow-holds", "marketplace.contract.signed", service=ServiceName.MINT)
async def hold_contract(uow: UnitOfWork, event: Envelope) -> None:
    """Move the signed contract's amount from the client's wallet into escrow."""
    contract = ContractSigned.model_validate(event.payload)
    await _JoinedMint(uow).hold_escrow(
        contract_reference(contract.contract_id),
        contract.client_id,
        contract.amount,
        contract.currency,
        idempotency_key=f"escrow-hold:{contract.contract_id}",
    )


@consumer("mint-escrow-releases", "marketplace.milestone.approved", service=ServiceName.MINT)
async def release_milestone(uow: UnitOfWork, event: Envelope) -> None:
    """Pay the approved milestone's amount from escrow to the freelancer, and announce it."""
    milestone = MilestoneApproved.model_validate(event.payload)
    mint = _JoinedMint(uow)
    await mint.open_wallet(milestone.freelancer_id, milestone.currency)
    view = await mint.release_escrow(
        contract_reference(milestone.contract_id),
        milestone.freelancer_id,
        milestone.amount,
        milestone.currency,
        idempotency_key=f"escrow-release:{milestone.milestone_id}",
    )
    if view.replayed:
        return  # this milestone was paid (and announced) before
    uow.emit(
        EventMessage(
            type=PAYMENT_RELEASED,
            source=events.SOURCE,
            subject=milestone.freelancer_id,
            correlation_id=event.correlation_id,
            payload={
                "contract_id": str(milestone.contract_id),
                "milestone_id": str(milestone.milestone_id),
                "freelancer_id": str(milestone.freelancer_id),
                "amount": str(view.amount),
                "currency": str(view.currency),
                "transaction_id": str(view.id),
            },
        )
    )


#: The mint's consumers, for :mod:`azora.sagas`.
CONSUMERS: tuple[Consumer, ...] = (open_wallet, reward_learning, hold_contract, release_milestone)
