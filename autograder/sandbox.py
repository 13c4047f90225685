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
    mode = requested or os.environ.get("AUTOGRADER_SANDBOX") or "auto"
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "auto":
        return "bwrap" if bwrap_works() else "rlimit"
    if mode == "bwrap" and not bwrap_works():
        from .course import AutograderError

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


def sandbox_settings(mode: str, *, memory_mb: int, hide: list[Path], threads: int,
                     max_file_mb: int = 512, tmp_mb: int = 256) -> dict:
    exposed = {sys.prefix, os.path.realpath(sys.base_prefix), str(Path(os.path.realpath(sys.executable)).parent)}
    exposed.update(os.path.realpath(p) for p in _editable_paths())
    hidden = {"/tmp", "/var/tmp", "/run", "/home", "/root", "/srv", "/mnt", "/media"}
    hidden.update(os.path.realpath(p) for p in hide)
    # a course directory is hidden wholesale: re-exposing it would reveal solutions/ and the gradebook.
    exposed = {p for p in exposed if os.path.isdir(p)}
    return {"mode": mode, "memory_mb": memory_mb, "max_file_mb": max_file_mb, "tmp_mb": tmp_mb,
            "hide": sorted(p for p in hidden if os.path.isdir(p)), "expose": sorted(exposed),
            "threads": threads, "python": sys.executable}


def write_kernelspec(root: Path, settings: dict) -> Path:
    """A kernelspec named ``autograder-sandbox`` whose command is the launcher below."""
    (root / "sandbox.json").write_text(json.dumps(settings, indent=1))
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "autograder.kernel_launcher", str(root / "sandbox.json"),
                     "-f", "{connection_file}"],
            "display_name": "Python 3 (autograder sandbox)", "language": "python",
            "env": {}, "metadata": {"debugger": False}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root  # put this on JUPYTER_PATH


def kernel_env(settings: dict, cwd: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    threads = str(settings["threads"])
    env = {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "LANG": "C.UTF-8",
           "TMPDIR": "/tmp" if settings["mode"] == "bwrap" else cwd, "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "PYTHONDONTWRITEBYTECODE": "1", "VIRTUAL_ENV": sys.prefix}
    for key, value in os.environ.items():
        if key.startswith(("TRAINLAB_", "NBGRADER_")) or key in ("PYTHONHASHSEED",):
            env[key] = value
    if settings["mode"] == "bwrap":
        env.update(MPLCONFIGDIR="/tmp/matplotlib", IPYTHONDIR="/tmp/ipython")
    return env


def bwrap_argv(settings: dict, cwd: str, shared: list[str], command: list[str]) -> list[str]:
    argv = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-all",
            "--cap-drop", "ALL", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Mount order matters: later mounts cover earlier ones. First the private /tmp and the hidden folders,
    # then the re-exposed Python/venv/editable packages (which may live *under* /tmp or a hidden folder,
    # e.g. a course cloned into /tmp), then the writable folders, and only then are the hidden folders made
    # read-only (bwrap must still create mount points inside them for the binds above).
    argv += ["--size", str(settings["tmp_mb"] * 1024 * 1024), "--tmpfs", "/tmp"]
    for path in settings["hide"]:
        if path != "/tmp":
            argv += ["--tmpfs", path]
    for path in settings["expose"]:
        argv += ["--ro-bind", path, path]
    argv += ["--bind", cwd, cwd]
    for path in shared:
        argv += ["--bind", path, path]
    for path in settings["hide"]:
        if path != "/tmp":
            argv += ["--remount-ro", path]
    argv += ["--chdir", cwd, "--clearenv"]
    for key, value in kernel_env(settings, cwd).items():
        argv += ["--setenv", key, value]
    return argv + ["--"] + command
