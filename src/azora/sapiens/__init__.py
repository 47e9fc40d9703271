"""Sapiens service: AI tutoring, learning paths, assessments and progress (``azora_sapiens``)."""
