"""What can go wrong in the education operations, each with a stable code.

Nothing is written when one is raised.
"""

from __future__ import annotations

from azora.errors import AzoraError


class EducationError(AzoraError):
    """An education operation was refused."""

    code = "education_error"


class CourseNotFound(EducationError):
    """No course with that id (or it is not published)."""

    code = "course_not_found"


class StudentNotFound(EducationError):
    """The user has no student record (it is created when a student registers)."""

    code = "student_not_found"


class EnrollmentNotFound(EducationError):
    """No enrollment with that id."""

    code = "enrollment_not_found"


class AlreadyEnrolled(EducationError):
    """The student is already enrolled in that course."""

    code = "already_enrolled"


class NotYourEnrollment(EducationError):
    """The enrollment belongs to another user."""

    code = "forbidden"


class InvalidProgress(EducationError, ValueError):
    """Progress is a whole percentage from 0 to 100, and a finished course stays finished."""

    code = "invalid_progress"
