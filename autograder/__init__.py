"""Instructor side of the course: reference solutions, hidden checks and their probes.

* ``checks``: one verdict per hidden check, decided in the grader's own process against the
  reference solutions in ``reference``;
* ``probes``: what runs where the student's code runs (seeded inputs, the call, what was seen),
  returning plain data only.

Not installed with the helper package and not shipped to students. Hidden tests reach it
through :func:`gradcam_course.instructor.hidden_checks.load_checks`.
"""
