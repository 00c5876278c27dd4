"""The one call the grader sends to a student's kernel for each hidden check::

    run("ch01_mnist_lenet", "probe_capture_values", capture_activations_and_gradients, "/scratch/probe-….json")

It imports the chapter's probe, calls it with the student's function and writes what it saw as
plain data (:mod:`.plain`). An exception raised by the student's function propagates, so the
test cell shows the student's own traceback. Everything here runs in the student's process and
can be subverted there; that only changes the data the grader receives, never the verdict's code.
"""

from __future__ import annotations

import importlib

from . import plain


def run(module: str, probe: str, function, path: str) -> None:
    probe = getattr(importlib.import_module(f"autograder.probes.{module}"), probe)
    text = plain.dumps(probe(function))
    with open(path, "w") as f:
        f.write(text)
