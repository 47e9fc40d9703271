"""The nine services as the tooling sees them: models, migration history and seeds.

This is the one module that knows every service; the command line and the test suite
go through it. Services themselves never import each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from azora import auth, education, family, forge, health, mint, nexus, notifications, sapiens
from azora.auth import models as auth_models
from azora.auth import seed as auth_seed
from azora.db.migrate import MigrationSource
from azora.db.seeding import SeedFunction
from azora.education import models as education_models
from azora.education import seed as education_seed
from azora.errors import UnknownServiceError
from azora.family import models as family_models
from azora.family import seed as family_seed
from azora.forge import models as forge_models
from azora.forge import seed as forge_seed
from azora.health import models as health_models
from azora.health import seed as health_seed
from azora.mint import models as mint_models
from azora.mint import seed as mint_seed
from azora.nexus import models as nexus_models
from azora.nexus import seed as nexus_seed
from azora.notifications import models as notifications_models
from azora.notifications import seed as notifications_seed
from azora.sapiens import models as sapiens_models
from azora.sapiens import seed as sapiens_seed
from azora.types import ServiceName


@dataclass(frozen=True)
class ServiceSpec:
    """Everything the tooling needs about one service."""

    name: ServiceName
    migrations: MigrationSource
    seed_development: SeedFunction
    seed_production: SeedFunction


def _spec(
    name: ServiceName, package: ModuleType, models: ModuleType, seed: ModuleType
) -> ServiceSpec:
    assert package.__file__ is not None
    versions = Path(package.__file__).parent / "migrations"
    return ServiceSpec(
        name=name,
        migrations=MigrationSource(name, models.Base.metadata, versions),
        seed_development=seed.seed_development,
        seed_production=seed.seed_production,
    )


#: In seed order: auth first, since the others refer to the users it creates.
SERVICES: Mapping[ServiceName, ServiceSpec] = {
    spec.name: spec
    for spec in (
        _spec(ServiceName.AUTH, auth, auth_models, auth_seed),
        _spec(ServiceName.EDUCATION, education, education_models, education_seed),
        _spec(ServiceName.MINT, mint, mint_models, mint_seed),
        _spec(ServiceName.FORGE, forge, forge_models, forge_seed),
        _spec(ServiceName.SAPIENS, sapiens, sapiens_models, sapiens_seed),
        _spec(ServiceName.NEXUS, nexus, nexus_models, nexus_seed),
        _spec(ServiceName.FAMILY, family, family_models, family_seed),
        _spec(ServiceName.NOTIFICATIONS, notifications, notifications_models, notifications_seed),
        _spec(ServiceName.HEALTH, health, health_models, health_seed),
    )
}


def select_services(names: Iterable[str]) -> list[ServiceSpec]:
    """The services named (all nine when none), in seed order, without duplicates.

    Raises:
        UnknownServiceError: a name is not one of the nine services.
    """
    wanted = [n.strip().lower() for n in names]
    unknown = [n for n in wanted if n not in SERVICES]
    if unknown:
        raise UnknownServiceError(
            f"unknown service {', '.join(repr(n) for n in unknown)}",
            hint=f"choose from: {', '.join(SERVICES)}",
        )
    if not wanted:
        return list(SERVICES.values())
    return [spec for name, spec in SERVICES.items() if name in wanted]
