"""What can go wrong in the ledger, each with a stable code; nothing is written when raised."""

from __future__ import annotations

from azora.errors import AzoraError


class MintError(AzoraError):
    """A ledger operation was refused."""

    code = "mint_error"


class InsufficientFunds(MintError):
    """The paying wallet's balance (or stake) is smaller than the amount."""

    code = "insufficient_funds"


class WalletFrozen(MintError):
    """A frozen wallet can neither send nor receive."""

    code = "wallet_frozen"


class WalletNotFound(MintError):
    """No wallet for that owner and currency (open it first)."""

    code = "wallet_not_found"


class CurrencyMismatch(MintError):
    """The two sides of a movement are in different currencies."""

    code = "currency_mismatch"


class IdempotencyConflict(MintError):
    """An idempotency key reused with different parameters."""

    code = "idempotency_conflict"


class InvalidOperation(MintError):
    """The request makes no sense (paying oneself, a negative period, ...)."""

    code = "invalid_operation"


class StakeNotFound(MintError):
    """No stake with that id."""

    code = "stake_not_found"


class StakeLocked(MintError):
    """The stake's lock period has not ended (or it was already released)."""

    code = "stake_locked"


class EscrowShortfall(MintError):
    """A release or refund larger than what the contract still holds in escrow."""

    code = "escrow_shortfall"
