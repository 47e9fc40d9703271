"""Rules of the codebase that a machine checks.

1. A service never imports another service (cross-service effects travel as events).
2. Nothing but the unit of work commits; service code never opens its own transaction.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import azora
from azora.types import ServiceName

SRC = Path(azora.__file__).parent
SERVICES = {s.value for s in ServiceName}
UNIT_OF_WORK = SRC / "db" / "uow.py"


def _python_files(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("*.py"))


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from azora import mint`
                yield node.lineno, f"{node.module}.{alias.name}"


def test_no_service_imports_another_service() -> None:
    violations = []
    for service in sorted(SERVICES):
        for path in _python_files(SRC / service):
            for line, module in _imported_modules(ast.parse(path.read_text())):
                parts = module.split(".")
                if len(parts) >= 2 and parts[0] == "azora" and parts[1] in SERVICES - {service}:
                    violations.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert violations == []


def _calls(tree: ast.AST, method: str) -> Iterator[int]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
        ):
            yield node.lineno


def test_only_the_unit_of_work_commits() -> None:
    commits = [
        f"{path.relative_to(SRC)}:{line}"
        for path in _python_files(SRC)
        if path != UNIT_OF_WORK
        for line in _calls(ast.parse(path.read_text()), "commit")
    ]
    assert commits == []


def test_services_never_open_their_own_transactions() -> None:
    begins = [
        f"{path.relative_to(SRC)}:{line}"
        for service in sorted(SERVICES)
        for path in _python_files(SRC / service)
        if "migrations" not in path.parts
        for line in _calls(ast.parse(path.read_text()), "begin")
    ]
    assert begins == []


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The scanners see the patterns they forbid (so a green run means something)."""
    sample = ast.parse("from azora.mint.models import Wallet\nsession.commit()\nconn.begin()\n")
    assert "azora.mint.models" in {m for _, m in _imported_modules(sample)}
    assert list(_calls(sample, "commit")) == [2]
    assert list(_calls(sample, "begin")) == [3]
