"""Notifications service: what users are told and how they want it (``azora_notifications``)."""
