"""The OS sandbox a submission's kernel runs in under ``gradcam-course grade``.

Bubblewrap (``bwrap``, Debian's ``bubblewrap``) starts the kernel in new user, PID, network,
IPC, UTS and cgroup namespaces, as uid 65534 with no capabilities, in a new session, dying with
the grader. It sees:

* read-only: the system (``/usr``), the Python installation and environment the grader runs
  in, and a staged folder with a copy of the helper package (the chapter's package answers
  removed, see :func:`stage`) and ``autograder/probes``, the only part of the checks that runs
  there (no verdict, no reference solution);
* read-write: its own scratch folder (its working directory and home), the folder holding its
  connection file and sockets, and a private ``/tmp``;
* nothing else: not the course folder, other submissions, the grader's working directory or
  home, the network (the kernel talks to the grader over Unix sockets in its own folder), or
  processes outside it (everything it starts dies with it).

Each process's address space is capped with ``RLIMIT_AS`` (an allocation beyond it fails
inside the student's process as a ``MemoryError``) and each file it writes with
``RLIMIT_FSIZE``. Where the grader may create control groups (as root on cgroup v1, or in a
delegated cgroup v2 subtree), the whole submission gets its own (:class:`Cgroup`): all its
processes together hold at most the same memory (the kernel's OOM killer stops it there, and the
grader reads that it did), start at most :data:`MAX_PROCESSES` tasks (a fork bomb fails inside
the sandbox), and share the CPU equally with the other submissions however many processes they
start. The grader stops it when its folders hold more than :data:`MAX_SCRATCH_MB` or
:data:`MAX_SCRATCH_FILES` (:class:`ScratchWatch`).
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client import AsyncKernelManager

from .layout import PACKAGE_ANSWER_REFUSED, PACKAGE_ANSWERS

BWRAP = "bwrap"
#: The uid the student's code runs as inside its user namespace (``nobody``).
SANDBOX_UID = 65534
MAX_FILE_MB = 1024
#: What a submission may keep in its scratch folders (working directory, /tmp, sockets) in all.
MAX_SCRATCH_MB = 2048
MAX_SCRATCH_FILES = 20_000
#: Tasks (processes and threads) a submission may run at once, when it has its own cgroup: a
#: torch kernel runs about 20, a class's "50 child processes" case about 60.
MAX_PROCESSES = 512
#: System files a kernel needs read-only (fonts for matplotlib, the loader's cache, time zone).
SYSTEM_FILES = ("/etc/fonts", "/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_symlink():  # merged /usr: /lib → usr/lib
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for path in SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def _python_binds() -> list[str]:
    """The interpreter and the environment, read-only, at their own paths (a venv's
    ``bin/python`` links to the base installation)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)}
    paths |= {os.path.realpath(p) for p in list(paths)}
    roots = sorted({p if os.path.isdir(p) else os.path.dirname(p) for p in paths})
    kept = [p for p in roots if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in roots)]
    return [arg for p in kept if not p.startswith("/usr/") for arg in ("--ro-bind", p, p)]


def argv(kernel_argv: list[str], lib: Path, work: Path, ipc: Path, memory_mb: int,
         tmp: Path | None = None) -> list[str]:
    """The command that runs ``kernel_argv`` in the sandbox; its ``/tmp`` is the folder ``tmp``
    (on disk, where the grader measures it, not in the machine's memory), or a tmpfs."""
    env = {"HOME": str(work), "PYTHONPATH": str(lib), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "NBGRADER_EXECUTION": "autograde",
           "GRADCAM_COURSE_DATA": "offline", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    limit = int(memory_mb) * 1024 * 1024
    cmd = [shutil.which("prlimit") or "prlimit", f"--as={limit}", f"--fsize={MAX_FILE_MB * 1024 * 1024}", "--core=0",
           shutil.which(BWRAP) or BWRAP, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
           *_system_binds(), *_python_binds(),
           "--proc", "/proc", "--dev", "/dev",
           *(["--bind", str(tmp), "/tmp"] if tmp is not None else ["--tmpfs", "/tmp"]),
           "--ro-bind", str(lib), str(lib), "--bind", str(work), str(work), "--bind", str(ipc), str(ipc),
           "--chdir", str(work), "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + ["--", *kernel_argv]


@functools.lru_cache(maxsize=None)
def unavailable() -> str | None:
    """Why the sandbox cannot start here (None when it can): tried once per process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which(BWRAP) is None or shutil.which("prlimit") is None:
        return "bwrap (Debian/Ubuntu: apt-get install bubblewrap) or prlimit (util-linux) is not installed"
    probe = argv([sys.executable, "-c", "import sys; sys.exit(0)"], Path("/"), Path("/tmp"), Path("/tmp"), 4096)
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap could not start: {err}"
    if run.returncode != 0:
        detail = " ".join(run.stderr.split())[-200:]
        return f"bwrap could not start a sandbox ({detail or f'exit {run.returncode}'}); user namespaces may be disabled"
    return None


# --- what the kernel may import ----------------------------------------------------------------

def _without_answers(source: str, names: set[str], module: str) -> str:
    """The module's source with the named top-level functions' bodies replaced by a refusal."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            message = (f"Your function uses {module}.{node.name}, {PACKAGE_ANSWER_REFUSED}: write "
                       "your own (gradcam-course grade flags this).")
            node.body = [ast.Raise(exc=ast.Call(func=ast.Name("AssertionError", ast.Load()),
                                                args=[ast.Constant(message)], keywords=[]), cause=None)]
    return ast.unparse(ast.fix_missing_locations(tree))


def stage(lib: Path, files: dict[str, bytes], chapter: str) -> None:
    """Fill ``lib`` (the kernel's ``PYTHONPATH``) with ``autograder/probes`` from ``files`` and a
    copy of the installed helper package in which the chapter's package answers
    (``layout.PACKAGE_ANSWERS``) are not there to call: their bodies only refuse."""
    import gradcam_course

    for rel, data in files.items():
        if rel == "autograder/__init__.py" or rel.startswith("autograder/probes/"):
            (lib / rel).parent.mkdir(parents=True, exist_ok=True)
            (lib / rel).write_bytes(data)
    package = Path(gradcam_course.__file__).resolve().parent
    shutil.copytree(package, lib / "gradcam_course", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    answers: dict[str, set[str]] = {}
    for qualname in PACKAGE_ANSWERS.get(chapter, {}).values():
        module, name = qualname.rsplit(".", 1)
        answers.setdefault(module, set()).add(name)
    for module, names in answers.items():
        path = lib / Path(*module.split(".")).with_suffix(".py")
        path.write_text(_without_answers(path.read_text(), names, module))


# --- one control group per submission ----------------------------------------------------------

#: Per controller, cgroup v1 file name and cgroup v2 file name of what the grader sets or reads.
_CGROUP_FILES = {"memory": ("memory.limit_in_bytes", "memory.max"),
                 "memsw": ("memory.memsw.limit_in_bytes", "memory.swap.max"),
                 "pids": ("pids.max", "pids.max"),
                 "oom": ("memory.oom_control", "memory.events")}
CGROUP_PREFIX = "gradcam-grade-"


def _own_cgroups() -> dict[str, Path]:
    """Controller (memory, pids, cpu) → the folder of this process's own cgroup that has it, in
    a hierarchy mounted here and writable; cgroup v2 only where the controller is delegated to
    children (listed in the folder's ``cgroup.subtree_control``)."""
    try:
        own = dict(line.split(":", 2)[1:] for line in Path("/proc/self/cgroup").read_text().splitlines())
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except (OSError, ValueError):
        return {}
    found: dict[str, Path] = {}
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts, kind = fields.split(), tail.split()
        if len(parts) < 5 or len(kind) < 3 or kind[0] not in ("cgroup", "cgroup2"):
            continue
        root, point = parts[3], Path(parts[4])
        if kind[0] == "cgroup":
            names = [o for o in kind[2].split(",") if o in ("memory", "pids", "cpu")]
            key = next((k for k in own if names and set(names) <= set(k.split(","))), None)
        else:
            key = "" if "" in own else None
            try:
                names = (point / own.get("", "/").lstrip("/") / "cgroup.subtree_control").read_text().split()
            except OSError:
                names = []
            names = [n for n in names if n in ("memory", "pids", "cpu")]
        if key is None or not names:
            continue
        path = own[key]
        rel = path[len(root):] if root != "/" and path.startswith(root) else path
        folder = point / rel.lstrip("/")
        if os.access(folder, os.W_OK):
            for name in names:
                found.setdefault(name, folder)
    return found


class Cgroup:
    """One submission's control group in each hierarchy that has memory, pids or cpu: the limits
    cover all its processes together. ``create`` returns None where none can be made; then the
    per-process ``RLIMIT_AS`` is the only memory limit and there is no process limit."""

    def __init__(self, folders: dict[str, Path]):
        self.folders = folders  # controller → this submission's folder

    @classmethod
    def create(cls, memory_mb: int, max_processes: int = MAX_PROCESSES) -> "Cgroup | None":
        folders: dict[str, Path] = {}
        name = f"{CGROUP_PREFIX}{os.getpid()}"
        for controller, parent in _own_cgroups().items():
            _remove_stale(parent)
            folder = parent / name
            try:
                folder.mkdir(exist_ok=True)
            except OSError:
                continue
            folders[controller] = folder
        group = cls(folders)
        try:
            if "memory" in folders:
                limit = str(int(memory_mb) * 1024 * 1024)
                group._write("memory", "memory", limit)
                if (folders["memory"] / group._file("memsw")).exists():  # no swap beyond the limit
                    group._write("memory", "memsw", limit if group.v1("memory") else "0")
            if "pids" in folders:
                group._write("pids", "pids", str(max_processes))
        except OSError:
            group.remove()
            return None
        return group if folders else None

    def v1(self, controller: str) -> bool:
        return not (self.folders[controller] / "cgroup.events").exists()

    def _file(self, what: str, controller: str = "memory") -> str:
        return _CGROUP_FILES[what][0 if self.v1(controller) else 1]

    def _write(self, controller: str, what: str, value: str) -> None:
        (self.folders[controller] / self._file(what, controller)).write_text(value)

    def describe(self) -> str:
        versions = sorted({1 if self.v1(c) else 2 for c in self.folders})
        return "cgroup " + " and ".join(f"v{v}" for v in versions)

    def enter(self, cmd: list[str]) -> list[str]:
        """``cmd`` started inside the group: a shell writes its own pid into each group, then
        becomes ``cmd``; so nothing ``cmd`` starts runs outside it."""
        procs = sorted({str(f / "cgroup.procs") for f in self.folders.values()})
        script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
                  'n=$((n-1)); done; exec "$@"')
        return ["/bin/sh", "-c", script, "sh", str(len(procs)), *procs, *cmd]

    def oom_kills(self) -> int:
        """How many of the group's processes the kernel's OOM killer stopped."""
        folder = self.folders.get("memory")
        try:
            lines = (folder / self._file("oom")).read_text().splitlines() if folder else []
        except OSError:
            return 0
        return next((int(line.split()[1]) for line in lines if line.startswith("oom_kill ")), 0)

    def remove(self) -> None:
        """Stop whatever still runs in the group and remove it."""
        import signal
        import time

        for folder in self.folders.values():
            for _ in range(50):
                try:
                    pids = (folder / "cgroup.procs").read_text().split()
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError, PermissionError):
                        pass
                time.sleep(0.1)
            try:
                folder.rmdir()
            except OSError:
                pass


def limits(memory_mb: int) -> str:
    """What bounds a submission here, in words, for the instructor (tries a cgroup once)."""
    group = Cgroup.create(memory_mb)
    per_process = f"each process's address space at {memory_mb} MB, each file at {MAX_FILE_MB} MB"
    if group is None:
        return f"limits: per process only ({per_process}); no cgroup could be made here"
    try:
        shared = {"memory": f"{memory_mb} MB of memory", "pids": f"{MAX_PROCESSES} tasks",
                  "cpu": "an equal CPU share"}
        return (f"limits per submission: {', '.join(shared[c] for c in shared if c in group.folders)} "
                f"({group.describe()}); {per_process}")
    finally:
        group.remove()


def _remove_stale(parent: Path) -> None:
    """Remove the empty groups of judges that are gone (a grader killed with SIGKILL)."""
    for folder in parent.glob(f"{CGROUP_PREFIX}*"):
        pid = folder.name[len(CGROUP_PREFIX):]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                folder.rmdir()
            except OSError:
                pass


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts inside :func:`argv`'s sandbox (or, with
    ``sandboxed=False``, as a plain child process with the same limits and environment)."""

    def __init__(self, *, lib: Path, work: Path, ipc: Path, tmp: Path, memory_mb: int, sandboxed: bool,
                 cgroup: Cgroup | None = None, **kwargs):
        super().__init__(transport="ipc", ip=str(ipc / "kernel"), connection_file=str(ipc / "kernel.json"),
                         **kwargs)
        self._sandbox = dict(lib=lib, work=work, ipc=ipc, tmp=tmp, memory_mb=memory_mb)
        self._sandboxed = sandboxed
        self._cgroup = cgroup
        # A cell that runs past its time limit is interrupted through the control channel: a
        # SIGINT would reach prlimit/bwrap, not the kernel inside.
        self.kernel_spec.interrupt_mode = "message"

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        # Unsandboxed, the kernel inherits the judge's own address-space limit (worker()).
        cmd = argv(cmd, **self._sandbox) if self._sandboxed else cmd
        return self._cgroup.enter(cmd) if self._cgroup is not None else cmd

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        env = dict(kw.get("env") or os.environ)
        if not self._sandboxed:  # the same environment the sandbox sets, in a plain process
            env.update(HOME=str(self._sandbox["work"]), PYTHONPATH=str(self._sandbox["lib"]),
                       TMPDIR=str(self._sandbox["tmp"]),
                       MPLBACKEND="Agg", NBGRADER_EXECUTION="autograde", PYTHONDONTWRITEBYTECODE="1")
            for key in [k for k in env if k.startswith(("GRADCAM_COURSE_", "KAGGLE", "JPY_"))]:
                del env[key]
            env["GRADCAM_COURSE_DATA"] = "offline"  # the sandbox has no network either
        kw["env"] = env
        kw["cwd"] = str(self._sandbox["work"])
        # What the kernel writes to its raw file descriptors (os.write(1, …)) must not pile up
        # in the grader: its cells' output arrives as messages, capped per cell.
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        return await super()._async_launch_kernel(kernel_cmd, **kw)


class ScratchWatch:
    """Measures a sandbox's folders every ``interval`` seconds from outside and calls ``stop``
    once they hold more than :data:`MAX_SCRATCH_MB` or :data:`MAX_SCRATCH_FILES` entries
    (``RLIMIT_FSIZE`` bounds one file, not how many). ``exceeded`` then says what."""

    def __init__(self, folders: list[Path], stop, interval: float = 1.0,
                 max_mb: int = MAX_SCRATCH_MB, max_files: int = MAX_SCRATCH_FILES):
        import threading

        self.folders, self.stop_sandbox, self.interval = folders, stop, interval
        self.max_bytes, self.max_files = max_mb * 1024 * 1024, max_files
        self.exceeded: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def measure(self) -> tuple[int, int]:
        """(bytes, entries) under the folders, without following links; iterative, so a
        folder nested 3 000 deep is no problem."""
        size = entries = 0
        stack = [str(f) for f in self.folders]
        while stack and size <= self.max_bytes and entries <= self.max_files:
            try:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        entries += 1
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                stack.append(entry.path)
                            else:
                                size += entry.stat(follow_symlinks=False).st_size
                        except OSError:
                            pass
            except OSError:
                pass
        return size, entries

    def _run(self):
        while not self._done.wait(self.interval):
            size, entries = self.measure()
            if size > self.max_bytes or entries > self.max_files:
                self.exceeded = (f"stopped by the grader: its scratch folders held more than "
                                 f"{self.max_bytes // 2**20} MB or {self.max_files} files")
                self.stop_sandbox()
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        return False
