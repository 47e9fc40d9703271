"""The shared vocabulary: names every part of the data layer agrees on."""

from __future__ import annotations

from enum import StrEnum


class ServiceName(StrEnum):
    """One of the nine services; each owns exactly one database named ``azora_<service>``."""

    AUTH = "auth"
    EDUCATION = "education"
    MINT = "mint"
    FORGE = "forge"
    SAPIENS = "sapiens"
    NEXUS = "nexus"
    FAMILY = "family"
    NOTIFICATIONS = "notifications"
    HEALTH = "health"


ALL_SERVICES: tuple[ServiceName, ...] = tuple(ServiceName)


class Environment(StrEnum):
    """Where the process runs; production turns on the strict checks."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Currency(StrEnum):
    """Currencies a wallet can hold."""

    AZR = "AZR"
    USD = "USD"
    BTC = "BTC"
    ETH = "ETH"
