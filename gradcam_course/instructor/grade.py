"""``gradcam-course grade``: grade a whole class, each submission sandboxed, in parallel, honestly.

Plain ``nbgrader autograde`` runs every student's code in the grader's own process tree, inside
the course folder, with the hidden checks in the student's kernel, one student after another,
and lets one malformed notebook stop the run. Here:

1. **Check** (parent, nothing executed): find the notebook, parse it, reject duplicated cells and
   edited nbgrader metadata with a reason; pre-scan the student's own code for tampering (a
   hint for a person, never a score).
2. **Assemble** (parent): the student's cells with every locked and test cell restored from the
   source notebook (hidden tests included) and missing test cells put back.
3. **Run** (one judge process per submission, ``--jobs`` at once, or on Dask workers): the judge
   starts the student's kernel in the OS sandbox (:mod:`.sandbox`: no network, no view of the
   course, of other submissions or of the grader, everything it starts dies with it, memory
   and file-size limits) and runs the cells there one by one. For a test cell, the visible
   checks run in the kernel; each hidden check's *probe* (``autograder/probes``) runs there too
   and sends back plain data only; its *verdict* (``autograder/checks``, with the reference
   solutions, which never enter the sandbox) runs in the judge and writes the cell's error if
   it fails. So a test cell can lose its points in the student's kernel but earn them only
   from the judge.
4. **Score** (parent): a test cell earns its points when it has no error output. Output on
   stderr (warnings, progress bars) and ``execute_result`` values do not count; statuses
   (timeout, kernel died) come from the grader's clock and the kernel's exit, never from what
   the student printed or raised.
5. **Record** (parent, the only writer), each submission as soon as it is known: the nbgrader
   gradebook (automatic scores updated in place, manual ones kept), ``autograded/``,
   ``feedback/`` (hidden tests and tracebacks into the checks removed), a per-submission record
   that lets a stopped run resume, and ``grades_<chapter>.csv`` with a status per student
   folder: ``graded``, ``failed`` (with the reason, never a plain 0) or ``flagged``, and whether
   it ran sandboxed.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .layout import PACKAGE_ANSWER_REFUSED, PACKAGE_ANSWERS, Course

GRADED, FAILED, FLAGGED = "graded", "failed", "flagged"
SANDBOXED, NOT_SANDBOXED = "bwrap", "NOT SANDBOXED"
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)
SCHEMA_VERSION = 3
#: Output kept in the autograded notebook and the feedback (JSON characters; figures included):
#: per cell and per notebook. Error outputs are always kept, shortened: they decide scores.
MAX_CELL_OUTPUT = 1_000_000
MAX_NOTEBOOK_OUTPUT = 8_000_000
MAX_ERROR_TEXT = 4_000
CUT_NOTE = "[grader: {cut} characters of output cut from this cell (limits: {cell} per cell, {notebook} per notebook)]"
#: What a student's own code has no business touching while it is graded. A hit does not change
#: the score: it flags the submission for a person to look at, with the pattern named.
SUSPICIOUS = {
    "get_ipython": r"\bget_ipython\b",
    "input or AST transformers": r"input_transformers|ast_transformers",
    "sys.displayhook": r"\bdisplayhook\b",
    "showtraceback / set_custom_exc": r"showtraceback|set_custom_exc",
    "the hidden checks (autograder / load_checks)": r"\bautograder\b|\bload_checks\b",
    "the gradebook": r"gradebook|sqlite3",
    "sys.modules or builtins": r"sys\.modules|\bbuiltins\b|__builtins__",
    "the grading flag NBGRADER_EXECUTION": r"NBGRADER_EXECUTION",
    "os._exit": r"os\._exit",
    "a patched torch or numpy function": r"(?m)^\s*(torch|np|numpy|F)(\.\w+)+\s*=(?!=)|setattr\(\s*(torch|np|numpy|F)\b",
    "a custom __eq__": r"def\s+__eq__",
    "code objects or reloaded modules": r"__code__|FunctionType|\breload\(|run_path|spec_from_file_location",
    "the grader's own modules": r"gradcam_course\.instructor|PACKAGE_ANSWERS",
}


@dataclass
class Assignment:
    """What grading needs from the course: the source notebook (tests, points) and the release."""

    root: Path
    chapter: str
    source: nbformat.NotebookNode
    release: nbformat.NotebookNode

    @classmethod
    def load(cls, root: Path, chapter: str) -> "Assignment":
        src, rel = Course(root).source(chapter), Course(root).release(chapter)
        for path in (src, rel):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: run `gradcam-course release {chapter}`.")
        return cls(root, chapter, nbformat.read(src, as_version=4), nbformat.read(rel, as_version=4))

    @property
    def tests(self) -> dict[str, float]:
        """grade_id → points of the automatically graded (code) cells, in notebook order."""
        return {meta(c)["grade_id"]: float(meta(c).get("points", 0)) for c in self.source.cells
                if c.cell_type == "code" and meta(c).get("grade")}

    @property
    def manual(self) -> dict[str, float]:
        return {meta(c)["grade_id"]: float(meta(c).get("points", 0)) for c in self.source.cells
                if c.cell_type == "markdown" and meta(c).get("grade")}


@dataclass
class Result:
    student: str
    status: str = GRADED
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # package answers used (layout.PACKAGE_ANSWERS)
    notebook: nbformat.NotebookNode | None = None
    seconds: float = 0.0
    sandbox: str = SANDBOXED  # how the student's code ran: SANDBOXED or NOT_SANDBOXED

    def record(self) -> dict:
        return {"student": self.student, "status": self.status, "reason": self.reason,
                "scores": self.scores, "flags": self.flags, "answers": self.answers,
                "seconds": round(self.seconds, 2), "sandbox": self.sandbox}

    @classmethod
    def from_record(cls, record: dict) -> "Result":
        return cls(**{k: record[k] for k in ("student", "status", "reason", "scores", "flags",
                                              "answers", "seconds", "sandbox")})

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


class SubmissionError(Exception):
    """A submission that cannot be graded; the message is the reason shown to the instructor."""


# --- 1 and 2: check and assemble -------------------------------------------------------------

def find_notebook(folder: Path, chapter: str) -> Path:
    if not folder.is_dir():
        raise SubmissionError(f"no notebook: no {chapter}/ folder")
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not notebooks:
        raise SubmissionError("no notebook")
    named = [p for p in notebooks if p.name == f"{chapter}.ipynb"]
    if named:
        return named[0]
    if len(notebooks) == 1:  # "03_resnet_covid_ct (1).ipynb": a browser renamed the download
        return notebooks[0]
    raise SubmissionError(f"several notebooks and none named {chapter}.ipynb: "
                          + ", ".join(p.name for p in notebooks))


def read_submission(path: Path) -> nbformat.NotebookNode:
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)  # read() only logs a schema violation (an int as source, a dict as a cell…)
    except Exception as err:  # JSON errors, wrong nbformat, unreadable bytes, schema violations
        detail = " ".join(str(err).split())
        raise SubmissionError(f"invalid notebook: {type(err).__name__}: {detail[:200]}") from err
    return nb


#: The types nbgrader's cell metadata must have (anything else was edited by hand).
METADATA_TYPES = {"grade_id": str, "grade": bool, "solution": bool, "locked": bool, "task": bool,
                  "points": (int, float), "schema_version": int}


def check_metadata(nb, assignment: Assignment) -> None:
    known = {meta(c).get("grade_id") for c in assignment.source.cells if meta(c)}
    seen: dict[str, int] = {}
    for cell in nb.cells:
        m = meta(cell)
        if not m:
            continue
        if not isinstance(m, dict):
            raise SubmissionError(f"edited metadata: a cell's nbgrader metadata is a {type(m).__name__}")
        for key, kind in METADATA_TYPES.items():
            if key in m and (not isinstance(m[key], kind) or (kind is not bool and isinstance(m[key], bool))):
                raise SubmissionError(f"edited metadata: {key} is {type(m[key]).__name__} "
                                      f"{str(m[key])[:40]!r} in a cell")
        gid = m.get("grade_id")
        seen[gid] = seen.get(gid, 0) + 1
        if m.get("schema_version") != SCHEMA_VERSION:
            raise SubmissionError(f"edited metadata: cell {gid!r} has schema_version "
                                  f"{m.get('schema_version')!r}, not {SCHEMA_VERSION}")
        if gid not in known:
            raise SubmissionError(f"edited metadata: unknown grade_id {gid!r}")
    duplicated = sorted(g for g, n in seen.items() if n > 1)
    if duplicated:
        raise SubmissionError("duplicated cells: " + ", ".join(duplicated))


def student_cells(nb, assignment: Assignment) -> list[str]:
    """The code the student wrote: their own cells and the solution cells (by the source
    notebook's metadata, never the submission's own ``locked`` flag) that differ from every
    released cell."""
    released = {c.source.strip() for c in assignment.release.cells if c.cell_type == "code"}
    solutions = {meta(c)["grade_id"] for c in assignment.source.cells if meta(c).get("solution")}
    return [c.source for c in nb.cells if c.cell_type == "code"
            and (meta(c).get("grade_id") is None or meta(c).get("grade_id") in solutions)
            and c.source.strip() not in released]


def prescan(code: str) -> list[str]:
    return [name for name, pattern in SUSPICIOUS.items() if re.search(pattern, code)]


def _parse(source: str):
    """The cell's syntax tree; IPython's ``%`` and ``!`` lines dropped; None if it does not parse."""
    import ast

    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None


def _dotted(node) -> str:
    import ast

    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def package_answers_named(cells: list[str], chapter: str) -> list[str]:
    """The chapter's answers in the helper package (``layout.PACKAGE_ANSWERS``) that the student's
    cells import or name: ``from gradcam_course.metrics import pointing_game`` (aliased or not),
    ``metrics.pointing_game`` on the module (however imported), or ``getattr(…, "pointing_game")``.
    A hint read from the source; the checks refuse the call itself however it is spelled."""
    import ast

    answers = PACKAGE_ANSWERS.get(chapter, {})
    modules = {q.rsplit(".", 1)[0] for q in answers.values()}
    found = set()
    for tree in filter(None, map(_parse, cells if answers else [])):
        aliases = set(modules)  # the names under which the answers' module is reachable
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if a.name in modules and a.asname}
            elif isinstance(node, ast.ImportFrom) and node.module:
                aliases |= {a.asname or a.name for a in node.names
                            if f"{node.module}.{a.name}" in modules}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                found |= {a.name for a in node.names if a.name in answers}
                if any(a.name == "*" for a in node.names):
                    found |= set(answers)
            elif isinstance(node, ast.Attribute) and node.attr in answers and _dotted(node.value) in aliases:
                found.add(node.attr)
            elif (isinstance(node, ast.Call) and _dotted(node.func) == "getattr" and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and node.args[1].value in answers):
                found.add(node.args[1].value)
    return [answers[n] for n in sorted(found)]


def package_answers_called(executed) -> list[str]:
    """The package answers that a check refused while it ran the student's function."""
    found = set()
    for cell in executed.cells:
        for out in cell.get("outputs", []):
            text = str(out.get("evalue", "")) if out.get("output_type") == "error" else ""
            if PACKAGE_ANSWER_REFUSED in text:
                found |= set(re.findall(r"uses ([\w.]+), " + re.escape(PACKAGE_ANSWER_REFUSED), text))
    return sorted(found)


def assemble(nb, assignment: Assignment) -> nbformat.NotebookNode:
    """The notebook to execute: the student's cells in their order, each locked cell replaced by
    the source's (hidden tests included), missing nbgrader cells inserted where they belong."""
    source = {meta(c)["grade_id"]: c for c in assignment.source.cells if meta(c)}
    stubs = {meta(c)["grade_id"]: c for c in assignment.release.cells if meta(c)}
    order = list(source)
    out = []
    for cell in nb.cells:
        gid = meta(cell).get("grade_id")
        if gid is None:
            out.append(copy.deepcopy(cell))
        elif meta(source[gid]).get("solution"):  # the student's answer (code or written)
            kept = copy.deepcopy(cell)
            kept.metadata["nbgrader"] = copy.deepcopy(meta(source[gid]))
            out.append(kept)
        else:
            out.append(copy.deepcopy(source[gid]))
    present = {meta(c).get("grade_id") for c in out}
    for i, gid in enumerate(order):
        if gid in present:
            continue
        restored = copy.deepcopy(stubs.get(gid) if meta(source[gid]).get("solution") else source[gid])
        before = set(order[:i])
        at = max((k + 1 for k, c in enumerate(out) if meta(c).get("grade_id") in before), default=0)
        out.insert(at, restored)
        present.add(gid)
    assembled = nbformat.v4.new_notebook(cells=out, metadata=copy.deepcopy(assignment.source.metadata))
    for cell in assembled.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return assembled


# --- 3: run in isolation -----------------------------------------------------------------------

def autograder_files(root: Path) -> dict[str, bytes]:
    """What the judge imports, ``autograder/{checks,probes,reference}``, as relative path → bytes
    (the kernel gets only ``probes``).

    Read once by the parent and shipped with every task, so a worker (a thread here, a Dask
    worker elsewhere) needs the course's Python environment but not the course folder.
    """
    files = {"autograder/__init__.py": b""}
    for part in ("checks", "probes", "reference"):
        for path in sorted((Course(root).autograder / part).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path.relative_to(root))] = path.read_bytes()
    return files


def run_isolated(files: dict[str, bytes], notebook: str, chapter: str, timeout: float,
                 memory_mb: int, sandboxed: bool = True, cell_timeout: float = 120) -> str:
    """Execute ``notebook`` (JSON) under the judge (:func:`worker`, a child process) in a
    scratch folder holding only ``files``; returns the executed notebook as JSON.

    Raises SubmissionError with the reason on a timeout, a dead kernel or a sandbox that cannot
    start.
    """
    with _scratch() as tmp:
        for rel, data in files.items():
            (tmp / "course" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "course" / rel).write_bytes(data)
        for part in ("lib", "work", "ipc", "tmp"):
            (tmp / part).mkdir()
        result = tmp / "result.ipynb"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KAGGLE", "JPY_", "GRADCAM_COURSE_"))}
        env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "gradcam_course.instructor.grade", "--worker", str(tmp), str(result),
               str(cell_timeout), str(memory_mb), chapter, "sandbox" if sandboxed else "no-sandbox"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp, env=env, text=True,
                                start_new_session=True)
        with _RUNNING_LOCK:
            RUNNING.add(proc)
        if STOPPING.is_set():  # the run was stopped while this one started
            _kill(proc)
        try:
            _, err = proc.communicate(notebook, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise SubmissionError(f"timeout: still running after {timeout:.0f} s")
        finally:
            with _RUNNING_LOCK:
                RUNNING.discard(proc)
        if proc.returncode != 0 or not result.is_file():
            died = re.search(r"KernelDied: (.*)", err)
            if died:
                raise SubmissionError(f"kernel died ({died.group(1)[:120]})")
            tail = " ".join(err.split())[-300:]
            raise SubmissionError(f"grading error (exit {proc.returncode}): {tail}")
        return result.read_text()


@contextlib.contextmanager
def _scratch():
    """A scratch folder, removed afterwards even when a submission left 3 000 nested folders
    (``shutil.rmtree`` recurses) or unreadable ones."""
    tmp = Path(tempfile.mkdtemp(prefix="gradcam-grade-"))
    try:
        yield tmp
    finally:
        search = os.environ.get("PATH", "") + os.pathsep + os.defpath
        for tool, *args in (("chmod", "-R", "u+rwX"), ("rm", "-rf")):
            path = shutil.which(tool, path=search)
            if path:
                subprocess.run([path, *args, "--", str(tmp)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)  # where there is no rm


def execute_task(files: dict[str, bytes], notebook: str, chapter: str, timeout: float,
                 memory_mb: int, sandboxed: bool = True) -> tuple[str, str, float]:
    """One submission's task, the same for the thread pool and for Dask: never raises for a
    submission's fault, returns ``("ok", executed JSON, seconds)`` or ``("failed", reason, seconds)``."""
    start = time.perf_counter()
    try:
        if sandboxed:
            from .sandbox import unavailable

            if unavailable():  # a Dask worker without bubblewrap: this submission is not run
                raise SubmissionError(f"not graded: no sandbox on this worker ({unavailable()})")
        outcome = run_isolated(files, notebook, chapter, timeout, memory_mb, sandboxed)
        return "ok", outcome, time.perf_counter() - start
    except SubmissionError as err:
        return "failed", str(err), time.perf_counter() - start


def _kill(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the judge; its sandbox dies with it
    except ProcessLookupError:
        pass
    proc.wait()


#: The submissions' processes now running here, so that Ctrl-C can stop them at once.
RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()
STOPPING = threading.Event()  # set while a run stops: a task that starts a process now kills it


def kill_running() -> None:
    with _RUNNING_LOCK:
        procs = list(RUNNING)
    for proc in procs:
        _kill(proc)


# --- the judge: the student's cells in the sandbox, the verdicts here ---------------------------

HIDDEN_CALL_FORM = "load_checks().check_<name>(<student function>)"


def hidden_calls(source: str) -> list[tuple[str, str]]:
    """``(check name, student function name)`` for each check a test cell's hidden block calls,
    read from the (trusted) source notebook; ``[]`` when the cell has no hidden block."""
    import ast

    calls = []
    for block in HIDDEN.findall(source):
        tree = _parse(block)
        if tree is None:
            raise ValueError(f"a hidden test does not parse: {block[:80]!r}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr.startswith("check_")):
                if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Name):
                    raise ValueError(f"a hidden test must read {HIDDEN_CALL_FORM}: {block[:80]!r}")
                calls.append((node.func.attr, node.args[0].id))
        if not calls:
            raise ValueError(f"a hidden test must read {HIDDEN_CALL_FORM}: {block[:80]!r}")
    return calls


def check_assignment(assignment: Assignment, checks) -> None:
    """Every automatically graded cell ends in hidden checks that have a probe and a verdict,
    so that no point is decided by the student's kernel alone (raises ValueError)."""
    for cell in assignment.source.cells:
        gid = meta(cell).get("grade_id")
        if gid not in assignment.tests:
            continue
        calls = hidden_calls(cell.source)
        if not calls:
            raise ValueError(f"test cell {gid!r} has no hidden test: its points would be decided "
                             f"in the student's kernel. End it with ### BEGIN HIDDEN TESTS / "
                             f"{HIDDEN_CALL_FORM} / ### END HIDDEN TESTS.")
        for check, _ in calls:
            found = getattr(checks, check, None)
            if not (callable(getattr(found, "probe", None)) and callable(getattr(found, "verdict", None))):
                raise ValueError(f"test cell {gid!r} calls {check}, which is not a check of "
                                 f"{checks.__name__} made with @paired(probe)")


def _error(ename: str, evalue: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def read_untrusted(path: Path, limit: int) -> bytes:
    """A file the sandbox wrote: a regular file (no link, no FIFO), at most ``limit`` bytes."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        return f.read(limit + 1)


class Judge:
    """Runs an assembled notebook cell by cell in the student's kernel; for a test cell, runs
    its visible part there, then each hidden check's probe there and its verdict here."""

    def __init__(self, client, checks, work: Path):
        self.client, self.checks, self.work = client, checks, work
        self.libraries: set[str] = set()  # finished implementations the graded functions called

    def run(self, nb) -> None:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            calls = hidden_calls(cell.source) if meta(cell).get("grade") else []
            if not calls:
                self.client.execute_cell(cell, index)
                continue
            original = cell.source
            cell.source = HIDDEN.sub("", original)  # the visible checks run in the student's kernel
            try:
                self.client.execute_cell(cell, index)
                if not any(o.get("output_type") == "error" for o in cell.outputs):
                    for check, function in calls:
                        if not self.verdict(cell, index, getattr(self.checks, check), function):
                            break
            finally:
                cell.source = original

    def verdict(self, cell, index: int, check, function: str) -> bool:
        from autograder.probes import plain

        path = self.work / f".probe-{uuid.uuid4().hex}.json"
        module = check.probe.__module__.rsplit(".", 1)[-1]
        call = nbformat.v4.new_code_cell(
            f"__import__('autograder.probes.run', fromlist=['run']).run("
            f"{module!r}, {check.probe.__name__!r}, {function}, {str(path)!r})")
        try:
            self.client.execute_cell(call, index)
        finally:
            self.client.nb.cells[index] = cell  # nbclient stores the cell it ran at that index
        cell.outputs.extend(call.outputs)
        if any(o.get("output_type") == "error" for o in call.outputs):
            return False  # the student's function raised: their own traceback is shown
        try:
            report = plain.loads(read_untrusted(path, plain.MAX_BYTES))
            if not (isinstance(report, dict) and set(report) == {"seen", "libraries"}):
                raise plain.MalformedResult("not a probe's report")
            seen = report["seen"]
            self.libraries |= {str(n)[:60] for n in report["libraries"] if isinstance(n, str)} \
                if isinstance(report["libraries"], list) else set()
        except (OSError, ValueError, plain.MalformedResult) as err:
            cell.outputs.append(_error("GradingError", f"{check.__name__}: the check's call in your "
                                       f"kernel returned no usable result "
                                       f"({err.strerror if isinstance(err, OSError) else err})."))
            return False
        try:
            check.verdict(seen)
        except Exception as err:  # noqa: BLE001 - a failed verdict is this cell's error, whatever it is
            cell.outputs.append(_error(type(err).__name__, str(err)))
            return False
        return True


def worker(tmp: str, result: str, cell_timeout: str, memory_mb: str, chapter: str, mode: str) -> int:
    """The judge's process: stage the sandbox, run the notebook from stdin under :class:`Judge`,
    write the executed notebook to ``result``. Only this process loads the verdicts and the
    reference solutions; the kernel gets ``autograder/probes`` and the helper package."""
    import importlib

    import torch

    from . import sandbox

    tmp = Path(tmp)
    import resource

    # The judge holds the kernel's output until it is capped: bounded like the kernel. Without
    # the sandbox (no prlimit around it) the kernel inherits this limit.
    limit = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    torch.set_num_threads(1)  # the kernels are the ones that need the cores
    course = tmp / "course"
    sys.path.insert(0, str(course))
    files = {str(p.relative_to(course)): p.read_bytes() for p in course.rglob("*") if p.is_file()}
    sandbox.stage(tmp / "lib", files, chapter)
    checks = importlib.import_module(Course(course).checks_module(chapter))
    nb = nbformat.reads(sys.stdin.read(), as_version=4)
    cgroup = sandbox.Cgroup.create(int(memory_mb))  # None where cgroups cannot be made here
    try:
        return _judge(nb, checks, tmp, result, float(cell_timeout), int(memory_mb), mode == "sandbox", cgroup)
    finally:
        if cgroup is not None:
            cgroup.remove()


def _judge(nb, checks, tmp: Path, result: str, cell_timeout: float, memory_mb: int, sandboxed: bool,
           cgroup) -> int:
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    from . import sandbox

    km = sandbox.SandboxedKernelManager(lib=tmp / "lib", work=tmp / "work", ipc=tmp / "ipc",
                                        tmp=tmp / "tmp", memory_mb=memory_mb, sandboxed=sandboxed,
                                        cgroup=cgroup, kernel_name="python3")
    client = NotebookClient(nb, km=km, timeout=cell_timeout, allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(tmp / "work")}})

    def stop_kernel():
        process = getattr(km.provisioner, "process", None)
        if process is not None:
            process.kill()  # bwrap: everything in the sandbox dies with it

    judge = Judge(client, checks, tmp / "work")
    watch = sandbox.ScratchWatch([tmp / "work", tmp / "ipc", tmp / "tmp"], stop_kernel)
    try:
        with client.setup_kernel(), watch:
            judge.run(nb)
    except DeadKernelError:
        process = getattr(km.provisioner, "process", None)
        code = process.poll() if process is not None else None
        how = (f"killed by signal {-code}" if code is not None and code < 0 else
               f"killed by signal {code - 128}" if code is not None and code > 128 else f"exit {code}")
        if watch.exceeded:
            why = watch.exceeded
        elif cgroup is not None and cgroup.oom_kills():
            why = (f"{how}: out of memory, its processes together held more than the sandbox's "
                   f"{memory_mb} MB")
        else:
            why = f"{how}: a crash, os._exit, a signal, or memory beyond the limit ({memory_mb} MB)"
        print("KernelDied: " + why, file=sys.stderr)
        return 3
    nb.metadata["gradcam_course_grader"] = {"libraries": sorted(judge.libraries)}
    cap_outputs(nb)  # 1 000 prints of 50 kB must not become a 50 MB notebook and feedback page
    Path(result).write_text(nbformat.writes(nb))
    return 0


def _size(output) -> int:
    return len(json.dumps(output, default=str))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} characters cut]"


#: What a displayed output may carry; anything else (widget state, JavaScript, custom JSON
#: types that nbconvert cannot render) is dropped, its text/plain kept when there is one.
OUTPUT_MIMETYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png",
                    "image/jpeg", "image/svg+xml")
UNSUPPORTED_NOTE = "[grader: an output of a type the grader does not keep was removed]"
MAX_ERRORS_PER_CELL = 3  # the first two and the last one are kept: the last is the verdict's


def _plain_output(out) -> bool:
    """Keep only the allowed MIME types with text values; False when nothing is left."""
    data = out.get("data")
    if not isinstance(data, dict):
        return False
    kept = {}
    for mime in OUTPUT_MIMETYPES:
        value = data.get(mime)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "".join(value)
        if isinstance(value, str):
            kept[mime] = value
    out["data"] = kept
    out["metadata"] = {}
    return bool(kept)


def _error_output(out):
    return nbformat.v4.new_output("error", ename=_shorten(str(out.get("ename", "")), 200),
                                  evalue=_shorten(str(out.get("evalue", "")), MAX_ERROR_TEXT),
                                  traceback=[_shorten(str(line), MAX_ERROR_TEXT)
                                             for line in list(out.get("traceback") or [])[-30:]])


def cap_outputs(nb, per_cell: int = MAX_CELL_OUTPUT, per_notebook: int = MAX_NOTEBOOK_OUTPUT) -> int:
    """Bound the notebook's outputs in place: at most ``per_cell`` characters (as JSON) in each
    cell and ``per_notebook`` in all, the cut said in a note at the end of the cell; outputs of
    a type outside :data:`OUTPUT_MIMETYPES` dropped. An error output decides the test cell's
    score, so a cell keeps at least one: at most :data:`MAX_ERRORS_PER_CELL`, each rebuilt with
    its name, message and traceback shortened. Returns the number of characters cut."""
    left, total_cut = per_notebook, 0
    for cell in nb.cells:
        outputs = cell.get("outputs") or []
        if cell.get("cell_type") != "code" or not outputs:
            continue
        errors = [i for i, o in enumerate(outputs) if o.get("output_type") == "error"]
        keep_errors = set(errors[:MAX_ERRORS_PER_CELL - 1] + errors[-1:])
        budget, kept, cut = min(per_cell, max(left, 0)), [], 0
        for i, out in enumerate(outputs):
            kind = out.get("output_type")
            if kind == "error":
                if i in keep_errors:
                    kept.append(_error_output(out))
                else:
                    cut += _size(out)
                continue
            if kind not in ("stream", "display_data", "execute_result"):
                cut += _size(out)
                continue
            if kind == "stream":  # a hostile kernel's message may carry any JSON here
                out = nbformat.v4.new_output("stream", name="stderr" if out.get("name") == "stderr" else "stdout",
                                             text=out["text"] if isinstance(out.get("text"), str) else str(out.get("text")))
            elif kind == "execute_result" and type(out.get("execution_count")) is not int:
                out["execution_count"] = None
            if kind != "stream" and not _plain_output(out):
                cut += _size(out)
                kept.append(nbformat.v4.new_output("stream", name="stdout", text=UNSUPPORTED_NOTE + "\n"))
                continue
            size = _size(out)
            if size <= budget:
                kept.append(out)
                budget -= size
            elif out.get("output_type") == "stream" and isinstance(out.get("text"), str) and budget > 1000:
                keep = budget - 1000
                cut += len(out["text"]) - keep
                out["text"] = out["text"][:keep]
                kept.append(out)
                budget = 0
            else:
                cut += size
        if cut:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text="\n" + CUT_NOTE.format(
                cut=cut, cell=per_cell, notebook=per_notebook) + "\n"))
        cell["outputs"] = kept
        left -= sum(_size(o) for o in kept)
        total_cut += cut
    return total_cut


# --- 4: score --------------------------------------------------------------------------------

def score(executed, assignment: Assignment) -> dict[str, float]:
    """Full points for a test cell without an error output; stderr and displayed values ignored."""
    points = assignment.tests
    scores = {gid: 0.0 for gid in points}
    for cell in executed.cells:
        gid = meta(cell).get("grade_id")
        if gid in points and cell.cell_type == "code":
            failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            scores[gid] = 0.0 if failed else points[gid]
    return scores


# --- 5: record -------------------------------------------------------------------------------

def feedback_notebook(executed, assignment: Assignment, result: Result) -> nbformat.NotebookNode:
    """What the student gets back: their code, the visible tests, their points, and for a failed
    hidden test its name and message, never the hidden test's source or a traceback into it."""
    nb = copy.deepcopy(executed)
    tests = assignment.tests
    secret_lines = {line.strip() for c in assignment.source.cells
                    for block in HIDDEN.findall(c.source) for line in block.splitlines()
                    if len(line.strip()) > 12 and "HIDDEN TESTS" not in line}
    for cell in nb.cells:
        gid = meta(cell).get("grade_id")
        if cell.cell_type != "code":
            continue
        if gid in tests:
            cell.source = HIDDEN.sub(f"# hidden test of `{gid}`: run by the grader, not shown\n",
                                     cell.source)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
            got = result.scores.get(gid, 0.0)
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout", text=f"[{gid}] {got:g} / {tests[gid]:g} points\n"))
        for out in cell.get("outputs", []):  # whatever student code printed from the checks
            for key in ("text", "evalue"):
                if isinstance(out.get(key), str):
                    out[key] = _redact(out[key], secret_lines)
            if "traceback" in out:
                out["traceback"] = [_redact(t, secret_lines) for t in out["traceback"]]
    total, maximum = result.total, sum(tests.values())
    cut = sum(1 for c in nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "stream" and "characters of output cut from this cell" in str(o.get("text", "")))
    head = (f"# Feedback: {assignment.chapter}\n\nStudent `{result.student}` · status **{result.status}**"
            f"{' (' + result.reason + ')' if result.reason else ''} · automatic points "
            f"**{total:g} / {maximum:g}**; written answers are graded by hand."
            + (f"\n\nThe output of {cut} cell(s) was longer than the grader keeps "
               f"({MAX_CELL_OUTPUT:,} characters per cell, {MAX_NOTEBOOK_OUTPUT:,} per notebook): "
               "it was cut where the cell says so." if cut else ""))
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
    return nb


def _redact(text: str, secrets: set[str]) -> str:
    for line in secrets:
        if line in text:
            text = text.replace(line, "[hidden test]")
    return text


#: Where a tag starts in text: escaped in markdown and raw cells, so that what a student
#: writes there shows as text (headings, lists, math and code still render).
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def write_html(nb, path: Path) -> None:
    """The feedback page, safe to open: HTML, SVG, markdown and LaTeX outputs shown as their
    text, tags in markdown and raw cells escaped, images kept only when they are base64 (their
    value goes into an ``src`` attribute), so a submission cannot put a script into a page that
    its reader opens. (nbconvert's own ``sanitize_html`` escapes every heading and paragraph.)"""
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") in ("markdown", "raw") and isinstance(cell.get("source"), str):
            cell.source = _TAG_START.sub("&lt;", cell.source)
            cell.metadata.pop("raw_mimetype", None)
            cell.metadata.pop("format", None)
            cell.pop("attachments", None)
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data")
            if isinstance(data, dict):
                for mime in ("text/html", "image/svg+xml", "text/markdown", "text/latex"):
                    data.pop(mime, None)
                for mime in ("image/png", "image/jpeg"):
                    if mime in data and not (isinstance(data[mime], str) and _BASE64.fullmatch(data[mime])):
                        data.pop(mime)
                if not data:
                    data["text/plain"] = UNSUPPORTED_NOTE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        body, _ = HTMLExporter().from_notebook_node(nb)
    except Exception as err:  # noqa: BLE001 - one unrenderable notebook must not stop the run
        import html

        body = (f"<!DOCTYPE html><html><body><h1>Feedback</h1><p>The feedback page could not be "
                f"rendered ({html.escape(type(err).__name__)}); the automatic points are in the "
                f"grades, the executed notebook in autograded/.</p></body></html>")
    path.write_text(body)


def record_gradebook(root: Path, assignment: Assignment, results: list[Result]) -> None:
    """One writer: every result goes into the course's gradebook through nbgrader's API."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    chapter, automatic = assignment.chapter, assignment.tests
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Course(root).gradebook}") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes
        for r in results:
            gb.update_or_create_student(r.student)
            try:  # a re-grade updates the automatic scores in place: manual ones and comments stay
                nb = gb.find_submission_notebook(chapter, chapter, r.student)
            except MissingEntry:
                gb.add_submission(chapter, r.student)
                nb = gb.find_submission_notebook(chapter, chapter, r.student)
            for grade in nb.grades:
                if grade.name not in automatic:
                    continue  # a written answer: the instructor's score, never touched here
                if r.status != FAILED and grade.name in r.scores:
                    grade.auto_score = r.scores[grade.name]
                    grade.needs_manual_grade = False
                else:  # this run has no score for it (the CSV says why)
                    grade.auto_score = None
            gb.db.commit()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A CSV cell that a spreadsheet will show, never run: a leading ``= + - @`` (or a tab or
    carriage return) would make it a formula (``=1+2``, ``=HYPERLINK(...)``), so it gets a ``'``."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def from_spreadsheet_safe(value: str) -> str:
    """The value :func:`spreadsheet_safe` was given."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def write_csv(path: Path, assignment: Assignment, results: list[Result]) -> None:
    tests = assignment.tests
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        # no wall times here: grading the same class twice (threads or Dask) gives the same file
        writer.writerow(["student", "status", "reason", *tests, "total", "max", "sandbox"])
        for r in sorted(results, key=lambda r: r.student):
            cells = [("" if r.status == FAILED else f"{r.scores.get(g, 0):g}") for g in tests]
            total = "" if r.status == FAILED else f"{r.total:g}"
            writer.writerow([spreadsheet_safe(r.student), r.status, spreadsheet_safe(r.reason),
                             *cells, total, f"{sum(tests.values()):g}", r.sandbox])


# --- the command -----------------------------------------------------------------------------

def _checks_module(course: Course, chapter: str):
    """The chapter's checks, imported here from the course root (the verdicts never load in a
    student's kernel under this command)."""
    import importlib

    if str(course.root) not in sys.path:
        sys.path.insert(0, str(course.root))
    return importlib.import_module(course.checks_module(chapter))


def ensure_gradebook(root: Path, chapter: str) -> None:
    """The assignment must be in the gradebook (nbgrader's generate_assignment puts it there)."""
    from nbgrader.api import Gradebook, MissingEntry

    db = Course(root).gradebook
    if db.is_file():
        with Gradebook(f"sqlite:///{db}") as gb:
            try:
                gb.find_assignment(chapter)
                return
            except MissingEntry:
                pass
    from .release import tool_env

    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", chapter, "--force"],
                   cwd=Course(root).autograder, env=tool_env(), check=True, capture_output=True)


def prepare(assignment: Assignment, folder: Path) -> tuple[Result, str | None]:
    """Parent side, nothing executed: the result so far and the notebook to run (JSON), or
    ``None`` when the submission already failed its checks."""
    result = Result(folder.name)
    try:
        nb = read_submission(find_notebook(folder / assignment.chapter, assignment.chapter))
        check_metadata(nb, assignment)
        cells = student_cells(nb, assignment)
        result.flags = prescan("\n".join(cells))
        result.answers = package_answers_named(cells, assignment.chapter)
        return result, nbformat.writes(assemble(nb, assignment))
    except SubmissionError as err:
        result.status, result.reason = FAILED, str(err)
        return result, None
    except Exception as err:  # noqa: BLE001 - any other shape the checks above did not foresee
        result.status = FAILED
        result.reason = f"invalid notebook: {type(err).__name__}: {' '.join(str(err).split())[:200]}"
        return result, None


def finish(result: Result, outcome: tuple[str, str, float], assignment: Assignment) -> Result:
    """Parent side: the status and scores from what the task returned. Nothing the student's
    code printed or raised sets a status: a ``MemoryError`` at the sandbox's address-space
    limit is an error in that cell like any other."""
    kind, payload, result.seconds = outcome
    if kind != "ok":
        result.status, result.reason = FAILED, payload
        return result
    executed = nbformat.reads(payload, as_version=4)
    result.scores = score(executed, assignment)
    result.notebook = executed
    result.answers = sorted(set(result.answers) | set(package_answers_called(executed)))
    libraries = executed.metadata.get("gradcam_course_grader", {}).get("libraries", [])
    if libraries:  # written by the judge; a submission that hides the call only avoids a flag
        result.flags.append("a graded function called " + ", ".join(libraries)
                            + "'s implementation")
    reasons = []
    if result.answers:
        reasons.append("uses the helper package's answer to an exercise of this chapter: "
                       + ", ".join(result.answers))
    if result.flags:
        reasons.append("suspicious code: " + "; ".join(result.flags))
    if reasons:
        result.status, result.reason = FLAGGED, " | ".join(reasons)
    return result


def run_tasks(tasks: dict[str, str], files: dict[str, bytes], chapter: str, timeout: float, memory_mb: int,
              jobs: int, scheduler: str | None, sandboxed: bool = True):
    """Yield ``(student, outcome)`` as tasks finish: on a local thread pool (each task is a
    child process, so threads are enough) or on the Dask cluster at ``scheduler``."""
    if scheduler is None:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            futures = {pool.submit(execute_task, files, nb, chapter, timeout, memory_mb, sandboxed): student
                       for student, nb in tasks.items()}
            for future in as_completed(futures):
                yield futures[future], _outcome(future)
        finally:  # normal end, Ctrl-C or SIGTERM: nothing queued starts, nothing running stays
            STOPPING.set()
            pool.shutdown(wait=False, cancel_futures=True)
            kill_running()
            pool.shutdown(wait=True)
            STOPPING.clear()
        return
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as err:
        raise RuntimeError("--scheduler needs dask.distributed: pip install distributed") from err
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as err:
        raise RuntimeError(f"cannot reach the Dask scheduler at {scheduler}: {err}. Start one "
                           "with `dask scheduler` and workers with `dask worker ADDRESS`.") from err
    with client:
        shared = client.scatter(files, broadcast=True)
        futures = {client.submit(execute_task, shared, nb, chapter, timeout, memory_mb, sandboxed, pure=False,
                                 key=f"grade-{student}-{uuid.uuid4().hex[:8]}"): student
                   for student, nb in tasks.items()}
        for future in dask_completed(futures):
            yield futures[future], _outcome(future)


def _outcome(future) -> tuple[str, str, float]:
    """A task's result; a lost worker or a bug in the grader fails that submission, not the run."""
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - reported per student, never swallowed silently
        return "failed", f"grading error: {type(err).__name__}: {str(err)[:200]}", 0.0


class Progress:
    """A progress bar on a terminal with a line per failed or flagged submission above it;
    one line per submission when the output is a log file."""

    def __init__(self, total: int, maximum: float, verbose: bool):
        from tqdm.auto import tqdm

        self.maximum, self.verbose, self.done, self.total = maximum, verbose, 0, total
        self.bar = tqdm(total=total, unit="submission", file=sys.stderr, dynamic_ncols=True,
                        disable=not (verbose and sys.stderr.isatty()))

    def __call__(self, r: Result) -> None:
        self.done += 1
        points = f" {r.total:g}/{self.maximum:g}" if r.status != FAILED else ""
        line = (f"[{self.done:>{len(str(self.total))}}/{self.total}] {r.student}: {r.status}"
                f"{points}{' (' + r.reason + ')' if r.reason else ''} in {r.seconds:.1f} s")
        if not self.bar.disable:
            if r.status != GRADED:
                self.bar.write(line)
            self.bar.update()
        elif self.verbose:
            print(line, flush=True)

    def close(self) -> None:
        self.bar.close()


class GradebookGuard:
    """The grader is the gradebook's only writer. Submissions run as the same user (unless
    sandboxed), so before each of its own writes it checks the file is as it left it, and puts
    its last copy back if anything changed or deleted it."""

    def __init__(self, path: Path):
        self.path, self.bytes, self.tampered = path, path.read_bytes(), False

    def check(self) -> None:
        current = self.path.read_bytes() if self.path.is_file() else None
        if current != self.bytes:
            self.path.write_bytes(self.bytes)
            if not self.tampered:
                print("warning: the gradebook was changed or deleted while submissions ran; "
                      "restored it (see the flagged submissions)", flush=True)
            self.tampered = True

    def wrote(self) -> None:
        self.bytes = self.path.read_bytes()


def fingerprint(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def submission_fingerprint(folder: Path) -> str:
    """Every file the student handed in, by relative path and content."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    return fingerprint(*(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes() for p in files))


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader (or a killed grader) sees the old file or the new one


def commit(course: Course, assignment: Assignment, result: Result, guard: GradebookGuard,
           key: str) -> None:
    """Everything about one finished submission, written at once: its autograded notebook and
    feedback page, its gradebook row, and its record (written last: a record means done)."""
    chapter = assignment.chapter
    if result.notebook is not None:
        write_atomically(course.autograded(result.student, chapter), nbformat.writes(result.notebook))
        html = course.feedback(result.student, chapter)
        html.parent.mkdir(parents=True, exist_ok=True)
        write_html(feedback_notebook(result.notebook, assignment, result), html)
    guard.check()
    record_gradebook(course.root, assignment, [result])
    guard.wrote()
    write_atomically(course.grading_record(result.student, chapter),
                     json.dumps({**result.record(), "key": key}, indent=1))


def finished_before(course: Course, chapter: str, student: str, key: str) -> Result | None:
    """The record of an earlier run for the same submission and the same assignment, if any."""
    path = course.grading_record(student, chapter)
    try:
        record = json.loads(path.read_text())
        return Result.from_record(record) if record.get("key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a run; what finished is saved."""

    def __init__(self, done: int, left: int, chapter: str):
        super().__init__(f"interrupted: {done} submission(s) graded and saved, {left} not graded; "
                         f"run `gradcam-course grade {chapter}` again to grade the rest (finished "
                         f"ones are kept, not graded again)")


def grade(root: Path, chapter: str, submitted: Path | None = None, jobs: int | None = None,
          timeout: float = 600, memory_mb: int = 8192, verbose: bool = True,
          scheduler: str | None = None, fresh: bool = False, sandbox: bool = True) -> list[Result]:
    """Grade every student folder of ``submitted``; resumable. Each submission's result is
    committed as soon as it is known (:func:`commit`); a submission whose files and whose
    assignment (source notebook, checks, reference) are unchanged since an earlier run keeps
    that run's result, unless ``fresh``.

    Each kernel runs in the OS sandbox (:mod:`.sandbox`); where it cannot start this refuses,
    unless ``sandbox=False`` (``--no-sandbox``): then the kernels run as the grader's user, and
    the CSV and the report say NOT SANDBOXED. The scores are decided here either way."""
    course = Course(root)
    assignment = Assignment.load(root, chapter)
    check_assignment(assignment, _checks_module(course, chapter))
    if sandbox and scheduler is None:
        from .sandbox import unavailable

        if unavailable():
            raise RuntimeError(
                f"Cannot sandbox the submissions here: {unavailable()}. Install bubblewrap "
                "(Debian/Ubuntu: sudo apt-get install bubblewrap) or, accepting that every "
                "student's code then runs as you with your files in its reach, pass --no-sandbox.")
    if scheduler is None and verbose:
        from .sandbox import limits

        print(f"{'Sandboxed (bubblewrap)' if sandbox else 'NOT SANDBOXED'}; {limits(memory_mb)}", flush=True)
    submitted = Path(submitted or course.submitted_dir)
    folders = sorted(p for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []
    if not folders:
        raise FileNotFoundError(f"No student folders in {submitted} (expected "
                                f"{submitted}/<student>/{chapter}/{chapter}.ipynb).")
    ensure_gradebook(root, chapter)
    guard = GradebookGuard(course.gradebook)
    files = autograder_files(root)
    assignment_key = fingerprint(nbformat.writes(assignment.source).encode(),
                                 nbformat.writes(assignment.release).encode(),
                                 *(k.encode() + v for k, v in sorted(files.items())),
                                 Path(__file__).read_bytes(), (Path(__file__).parent / "sandbox.py").read_bytes(),
                                 b"sandbox" if sandbox else b"no sandbox")
    jobs = max(1, jobs or os.cpu_count() or 1)
    progress = Progress(len(folders), sum(assignment.tests.values()), verbose)
    results: dict[str, Result] = {}
    tasks: dict[str, str] = {}
    keys: dict[str, str] = {}
    resumed = 0
    for folder in folders:
        keys[folder.name] = key = fingerprint(assignment_key.encode(),
                                              submission_fingerprint(folder / chapter).encode())
        earlier = None if fresh else finished_before(course, chapter, folder.name, key)
        if earlier is not None:
            results[folder.name], resumed = earlier, resumed + 1
            continue
        result, notebook = prepare(assignment, folder)
        result.sandbox = SANDBOXED if sandbox else NOT_SANDBOXED
        results[result.student] = result
        if notebook is None:
            commit(course, assignment, result, guard, key)
            progress(result)
        else:
            tasks[result.student] = notebook
    if resumed and verbose:
        print(f"{resumed} submission(s) unchanged since an earlier run: kept their results "
              f"(--fresh grades them again)", flush=True)
        progress.done += resumed
    pending = set(tasks)  # what has no result yet: the CSV lists everyone else

    def save_csv():
        write_csv(course.grades_csv(chapter), assignment,
                  [results[s] for s in sorted(results) if s not in pending])

    running = run_tasks(tasks, files, chapter, timeout, memory_mb, jobs, scheduler, sandbox)
    try:
        for student, outcome in running:
            try:
                finished = finish(results[student], outcome, assignment)
            except Exception as err:  # noqa: BLE001 - one odd executed notebook is one failure
                finished = results[student]
                finished.status, finished.notebook = FAILED, None
                finished.reason = f"grading error: {type(err).__name__}: {str(err)[:200]}"
            try:
                commit(course, assignment, finished, guard, keys[student])
            except Exception as err:  # noqa: BLE001 - one submission's files, never the run
                finished.status, finished.notebook, finished.scores = FAILED, None, {}
                finished.reason = f"grading error while saving: {type(err).__name__}: {str(err)[:200]}"
                commit(course, assignment, finished, guard, keys[student])
            finished.notebook = None  # on disk now: a large class must not pile up in memory
            pending.discard(student)
            progress(finished)
            save_csv()
    except KeyboardInterrupt:
        running.close()  # no queued submission starts, running ones are killed
        progress.close()
        save_csv()
        raise Interrupted(len(results) - len(pending), len(pending), chapter) from None
    finally:
        running.close()
        progress.close()
    guard.check()
    ordered = [results[s] for s in sorted(results)]
    write_csv(course.grades_csv(chapter), assignment, ordered)
    return ordered


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    sys.exit(worker(*sys.argv[2:8]))
