"""Kept for chapter-1 notebooks handed out before ``LeNet`` moved to :mod:`gradcam_course.mnist`
(students' copies import it from here). New code imports ``gradcam_course.mnist``."""

from .mnist import LeNet  # noqa: F401
