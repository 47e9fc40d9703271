"""Education service: students, courses, progress and certificates (``azora_education``)."""
