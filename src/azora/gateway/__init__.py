"""The Socket.IO gateway: pushes each user's events, and the public events they asked for,
to their open connections (``azora serve``).

:mod:`~azora.gateway.hub` routes (public patterns through :mod:`~azora.gateway.index`),
:mod:`~azora.gateway.history` finds what a reconnecting client missed and
:mod:`~azora.gateway.admission` rations those catch-ups, :mod:`~azora.gateway.guard`
checks what clients send, :mod:`~azora.gateway.server` is the ASGI application
(Socket.IO plus ``GET /health`` and ``GET /events/types``).
"""
