"""Nexus service: event history, preferences, recommendations and interactions (``azora_nexus``)."""
