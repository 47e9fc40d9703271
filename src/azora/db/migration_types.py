"""The column types migrations refer to, under stable names.

Revisions import this module as ``azora_types`` so renaming a module elsewhere never
breaks an old migration.
"""

from azora.db.columns import JSONDocument, UTCDateTime
from azora.db.money import Money

__all__ = ["JSONDocument", "Money", "UTCDateTime"]
