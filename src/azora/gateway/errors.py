"""What the gateway refuses: an address it cannot listen on, a malformed request, more
patterns than a connection may hold."""

from __future__ import annotations

import errno

from azora.errors import AzoraError, InvalidInput

_CHOOSE = "choose another with --port (or AZORA_SERVE_PORT)"


class AddressUnavailable(AzoraError):
    """The gateway cannot listen on ``host``:``port`` (taken, not permitted, not local)."""

    code = "address_unavailable"

    def __init__(self, host: str, port: int, error: OSError) -> None:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if error.errno == errno.EADDRINUSE:
            message = f"{where} is already in use"
            hint = f"another process listens there (another azora serve?); {_CHOOSE}"
        elif error.errno == errno.EACCES:
            message = f"not permitted to listen on {where}"
            hint = f"ports below 1024 need privileges; {_CHOOSE}"
        else:
            message = f"cannot listen on {where}: {error.strerror or error}"
            hint = "--host (AZORA_SERVE_HOST) must name an address of this machine"
        super().__init__(message, hint=hint)
        self.host = host
        self.port = port


class TooManyPatterns(InvalidInput):
    """A connection would hold more than ``limit`` event patterns."""

    code = "too_many_patterns"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"a connection holds at most {limit} event patterns",
            hint="unsubscribe from some, or use a broader one such as 'finance.>'",
        )
        self.limit = limit


class InvalidRequest(InvalidInput):
    """A client's request (connect, subscribe, ...) that is not shaped as documented."""

    code = "invalid_request"
