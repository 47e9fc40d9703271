"""The gateway's plain HTTP side: the landing document at ``/`` and what a bare
``/socket.io/`` request (a browser, a probe) gets."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from azora import __version__


async def test_the_root_names_the_service_and_links_to_what_it_serves(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/") as response:
            assert response.status == 200
            landing = await response.json()
        assert landing == {
            "name": "Azora",
            "version": __version__,
            "links": {"health": "/health", "events": "/events/types", "socket.io": "/socket.io/"},
        }
        for link in landing["links"].values():
            async with http.get(f"{url}{link}") as response:
                assert response.status != 404, link


async def test_a_bare_socket_io_request_is_refused_and_logged_at_debug_level_only(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="engineio.server")
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"{url}/socket.io/") as response:
                assert response.status == 400
    about_it = [r for r in caplog.records if "unsupported version" in r.getMessage()]
    assert len(about_it) == 3  # still there for whoever debugs a client
    assert {r.levelno for r in about_it} == {logging.DEBUG}
