"""Instructor side of the course: nbgrader configuration, reference solutions, hidden checks.

Not installed with the helper package and not shipped to students. Hidden tests reach it
through :func:`gradcam_course.instructor.hidden_checks.load_checks`.
"""
