"""Health service: logs, the compliance log and health-check history (``azora_health``)."""
