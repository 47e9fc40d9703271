"""One typed entry point to the operations the applications call most.

    async with open_integration(get_settings()) as azora:
        user = await azora.create_user(email="a@b.co", password="...", name="Ama Mensah")
        view = await azora.get_user_with_cache(user.id)

Inputs are validated (ids, currencies, amounts, progress) and refused with a domain
error (:class:`azora.errors.AzoraError` and its service subclasses) before anything is
written; outputs are frozen pydantic views, and no password hash ever leaves. Reads of
users and courses go through the cache, which is never stale after a write and never
fails a request (when Redis is down, reads go to the database). Money is never read
from the cache: wallets are read from the database, and balances change only through
ledger operations.

Until the event bus delivers events between services, ``create_user`` runs the
registration saga's reactions itself once the account committed (education creates the
student record, the mint opens the AZR wallet); both are idempotent, so the bus's
consumers can replay the same ``system.user.registered`` event later without effect.
"""

from azora.integration.facade import Integration, open_integration

__all__ = ["Integration", "open_integration"]
