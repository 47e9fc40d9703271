"""Education's reactions to other services' events (the sagas of EVENTS.md).

- ``system.user.registered``: a student gets a student record (other roles get none).

The handler runs :meth:`EducationService.on_user_registered` inside the consumer's
transaction (see :mod:`azora.events.consumers`): :class:`_JoinedEducation` hands it the
consumer's unit of work, so the student row and the processed-events row commit together.
"""

from __future__ import annotations

import uuid

from azora.db.joined import joined
from azora.db.uow import UnitOfWork
from azora.education.courses import EducationService
from azora.events.catalog import UserRegistered
from azora.events.consumers import Consumer, consumer
from azora.events.envelope import Envelope
from azora.types import ServiceName


class _JoinedEducation(EducationService):
    """Education's operations inside an open unit of work of the education database."""

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow.databases)
        self._outer = uow

    def unit_of_work(self, user_id: uuid.UUID | None = None) -> UnitOfWork:
        """The consumer's unit of work, joined (it acts as the service for every user)."""
        return joined(self._outer)


@consumer("education-students", "system.user.registered", service=ServiceName.EDUCATION)
async def create_student(uow: UnitOfWork, event: Envelope) -> None:
    """Create the student record of a newly registered student (once per user)."""
    payload = UserRegistered.model_validate(event.payload)
    await _JoinedEducation(uow).on_user_registered(payload.model_dump(mode="json"))


#: Education's consumers, for :mod:`azora.sagas`.
CONSUMERS: tuple[Consumer, ...] = (create_student,)
