"""The Socket.IO gateway: pushes each user's events, and the public events they asked for,
to their open connections (``azora serve``).

:mod:`~azora.gateway.hub` routes, :mod:`~azora.gateway.history` finds what a reconnecting
client missed, :mod:`~azora.gateway.server` is the ASGI application (Socket.IO plus
``GET /health`` and ``GET /events/types``).
"""
