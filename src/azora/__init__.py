"""Azora's data layer: nine service databases, their operations, cache, events and tooling."""

__version__ = "0.1.0"
