"""How a student's kernel is confined.

Only the *kernel* runs inside the sandbox; the trusted nbgrader process (the worker) stays outside and talks to
the kernel over ZeroMQ ``ipc://`` sockets in a folder both can see. So there are no TCP ports to race for, the
kernel has no network at all, and it cannot see the gradebook, the hidden tests held in it, ``solutions/`` or
other students' files.

``bwrap`` mode: bubblewrap with fresh user/pid/net/ipc/uts namespaces, all capabilities dropped, the system
read-only, home/course/submission/scratch folders hidden (the Python installation and the course's editable
packages re-exposed read-only), a private size-limited ``/tmp``, and only the notebook's own folder writable.
``rlimit`` mode (no bubblewrap): only resource limits; the kernel runs with the grader's permissions.
Both modes: address-space limit (memory), file-size limit, no core dumps, stdout/stderr of the kernel process
discarded (notebook output still arrives over the kernel protocol, capped by the worker).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from .model import Limits, SandboxSettings, to_json

KERNEL_NAME = "autograder-sandbox"
MODES = ("auto", "bwrap", "rlimit")


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        r = subprocess.run([exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
                            "--die-with-parent", "--cap-drop", "ALL", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def resolve_mode(requested: str | None = None) -> str:
    """``auto`` (default; env ``AUTOGRADER_SANDBOX`` may override) picks bwrap when it works."""
    from .course import AutograderError

    env = os.environ.get("AUTOGRADER_SANDBOX")
    mode = requested or env or "auto"
    if mode not in MODES:
        source = "--sandbox" if requested else "the environment variable AUTOGRADER_SANDBOX"
        raise AutograderError(f"unknown sandbox mode {mode!r} (from {source}); use one of {', '.join(MODES)}")
    if mode == "auto":
        return "bwrap" if bwrap_works() else "rlimit"
    if mode == "bwrap" and not bwrap_works():
        raise AutograderError("bubblewrap was requested but `bwrap` is missing or cannot create namespaces; "
                              "install it (Debian: apt-get install -y bubblewrap) or use --sandbox auto")
    return mode


FALLBACK_WARNING = """
!!! WARNING: bubblewrap (bwrap) is not available, so student code is NOT sandboxed.          !!!
!!! Kernels run with resource limits only (memory, file size, time) and with YOUR permissions: !!!
!!! a submission can read solutions/, other submissions and your files, and use the network.   !!!
!!! Install it (Debian/Ubuntu: apt-get install -y bubblewrap) before grading untrusted work.    !!!
"""


def _editable_paths() -> list[str]:
    """Source folders of editable installs (setuptools' ``__editable__*_finder.py`` MAPPING)."""
    out: list[str] = []
    purelib = sysconfig.get_paths()["purelib"]
    for finder in Path(purelib).glob("__editable___*_finder.py"):
        try:
            tree = ast.parse(finder.read_text())
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.AnnAssign | ast.Assign):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if any(getattr(t, "id", "") == "MAPPING" for t in targets):
                    try:
                        out += list(ast.literal_eval(node.value).values())
                    except ValueError:
                        pass
    for pth in Path(purelib).glob("*.pth"):  # plain path entries (old-style editable installs)
        for line in pth.read_text(errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "import")) and os.path.isdir(line):
                out.append(line)
    return out


def python_paths() -> list[str]:
    """Folders the kernel's Python needs: the environment, the base installation, the interpreter's folder and
    the course's editable packages (as the grader sees them, possibly through symlinks)."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(sys.executable).parent),
             str(Path(os.path.realpath(sys.executable)).parent)]
    return paths + _editable_paths()


def expose_pairs(paths: list[str]) -> list[list[str]]:
    """``[source, destination]`` read-only binds that make each of ``paths`` usable inside the sandbox.

    bubblewrap resolves a symlink in a bind *source* inside the new root, where the hidden folders are empty: a
    ``.venv`` that is a symlink to a folder under /tmp would point nowhere. So the source is always the real path
    (resolved here, outside), bound both at the path as given and at its real path."""
    pairs: dict[str, str] = {}
    for p in paths:
        if not os.path.isdir(p):
            continue
        real = os.path.realpath(p)
        pairs.setdefault(real, real)
        absolute = os.path.abspath(p)
        if absolute != real:
            pairs.setdefault(absolute, real)
    return [[src, dest] for dest, src in sorted(pairs.items())]  # parents before children


def sandbox_settings(mode: str, *, limits: Limits, hide: list[Path], threads: int,
                     python: list[str] | None = None) -> SandboxSettings:
    hidden = {"/tmp", "/var/tmp", "/run", "/home", "/root", "/srv", "/mnt", "/media"}
    hidden.update(os.path.realpath(p) for p in hide)
    # a course directory is hidden wholesale: re-exposing it would reveal solutions/ and the gradebook.
    return SandboxSettings(mode=mode, memory_mb=limits.memory_mb, max_file_mb=limits.max_file_mb,
                           tmp_mb=limits.tmp_mb, threads=threads, python=sys.executable,
                           hide=sorted(os.path.realpath(p) for p in hidden if os.path.isdir(p)),
                           expose=expose_pairs(python_paths() if python is None else python))


def write_kernelspec(root: Path, settings: SandboxSettings) -> Path:
    """A kernelspec named ``autograder-sandbox`` whose command is the launcher below."""
    (root / "sandbox.json").write_text(to_json(settings))
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "autograder.kernel_launcher", str(root / "sandbox.json"),
                     "-f", "{connection_file}"],
            "display_name": "Python 3 (autograder sandbox)", "language": "python",
            "env": {}, "metadata": {"debugger": False}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root  # put this on JUPYTER_PATH


PROBE_OK = "autograder-probe-ok"


def preflight(root: Path, timeout: int = 180) -> None:
    """Start the sandboxed Python once (same launcher, limits, environment and mounts as a kernel, importing
    what a kernel imports); raise AutograderError naming the cause if it cannot."""
    from .course import AutograderError

    probe = root / "probe"
    probe.mkdir(exist_ok=True)
    settings = json.loads((root / "sandbox.json").read_text())
    try:
        proc = subprocess.run([sys.executable, "-m", "autograder.kernel_launcher", str(root / "sandbox.json"),
                               "--probe"], cwd=probe, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AutograderError(f"a sandboxed kernel did not start within {timeout} s; nothing was graded") from None
    if proc.returncode == 0 and PROBE_OK in proc.stdout:
        return
    detail = "\n    ".join((proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}")
                             .splitlines()[-8:])
    exposed = ", ".join(sorted({dest for _, dest in settings["expose"]})) or "nothing"
    raise AutograderError(
        f"a sandboxed kernel ({settings['mode']} mode) cannot start, so nothing was graded:\n    {detail}\n"
        f"  The kernel runs {settings['python']}; the sandbox hides {', '.join(settings['hide'])} and re-exposes "
        f"{exposed}. Check that the Python environment and the course's packages are installed there (a venv that "
        "is a symlink is followed to its real folder), or grade trusted work with --sandbox rlimit.")


def kernel_env(settings: SandboxSettings, cwd: str) -> dict[str, str]:
    """The kernel's whole environment, in both modes (nothing else of the grader's environment leaks in)."""
    venv_bin = str(Path(settings.python).parent)
    threads = str(settings.threads)
    env = {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "LANG": "C.UTF-8",
           "TMPDIR": "/tmp" if settings.mode == "bwrap" else cwd, "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "PYTHONDONTWRITEBYTECODE": "1", "VIRTUAL_ENV": str(Path(settings.python).parent.parent),
           "PYTHONNOUSERSITE": "1"}
    for key, value in os.environ.items():
        if key.startswith(("TRAINLAB_", "NBGRADER_")) or key in ("PYTHONHASHSEED",):
            env[key] = value
    if settings.mode == "bwrap":
        env.update(MPLCONFIGDIR="/tmp/matplotlib", IPYTHONDIR="/tmp/ipython")
    else:
        env.update(MPLCONFIGDIR=os.path.join(cwd, ".matplotlib"), IPYTHONDIR=os.path.join(cwd, ".ipython"))
        if os.environ.get("JPY_PARENT_PID"):  # lets the kernel exit when its grader dies (not in a pid namespace)
            env["JPY_PARENT_PID"] = os.environ["JPY_PARENT_PID"]
    return env


def bwrap_argv(settings: SandboxSettings, cwd: str, shared: list[str], command: list[str]) -> list[str]:
    argv = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-all",
            "--cap-drop", "ALL", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Mount order matters: later mounts cover earlier ones. First the private /tmp and the hidden folders,
    # then the re-exposed Python/venv/editable packages (which may live *under* /tmp or a hidden folder,
    # e.g. a course cloned into /tmp), then the writable folders, and only then are the hidden folders made
    # read-only (bwrap must still create mount points inside them for the binds above).
    argv += ["--size", str(settings.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    for path in settings.hide:
        if path != "/tmp":
            argv += ["--tmpfs", path]
    for src, dest in settings.expose:
        argv += ["--ro-bind", src, dest]
    argv += ["--bind", cwd, cwd]
    for path in shared:
        argv += ["--bind", path, path]
    for path in settings.hide:
        if path != "/tmp":
            argv += ["--remount-ro", path]
    argv += ["--chdir", cwd, "--clearenv"]
    for key, value in kernel_env(settings, cwd).items():
        argv += ["--setenv", key, value]
    return argv + ["--"] + command
