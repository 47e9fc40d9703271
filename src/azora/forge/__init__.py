"""Forge service: jobs marketplace, applications, contracts and disputes (``azora_forge``)."""
