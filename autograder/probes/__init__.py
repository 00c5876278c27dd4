"""What runs where the student's code runs: one probe per hidden check.

A probe builds the check's seeded inputs (:mod:`.basic_models`), calls the student's function
and returns what it saw as plain data (:mod:`.plain`). It holds no reference solution and
decides nothing: the verdict in ``autograder.checks`` does, in the grader's own process.
"""
