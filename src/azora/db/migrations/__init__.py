"""Alembic's environment shared by the nine per-service migration histories."""
