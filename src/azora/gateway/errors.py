"""What keeps the gateway from serving: an address it cannot listen on."""

from __future__ import annotations

import errno

from azora.errors import AzoraError

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
