"""Kernel command of the ``autograder-sandbox`` kernelspec: set limits, then exec the kernel (in bwrap).

Called by jupyter_client as ``python -m autograder.kernel_launcher SANDBOX.json -f CONNECTION_FILE [...]``
with the notebook's folder as the current directory. With ``--probe`` instead of a connection file it starts
the same sandboxed Python with the same limits and environment, imports what a kernel imports, prints
``autograder-probe-ok`` and exits (the grader's preflight check; its output is not discarded).
"""

from __future__ import annotations

import os
import resource
import signal
import sys

from .model import SandboxSettings, from_json
from .sandbox import PROBE_OK, bwrap_argv, kernel_env


def main(argv: list[str]) -> None:
    with open(argv[0]) as fh:
        settings = from_json(SandboxSettings, fh.read())
    rest = argv[1:]
    probe = rest == ["--probe"]
    cwd = os.getcwd()
    mem = settings.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = settings.max_file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead of killing
    shared: set[str] = set()
    if probe:
        command = [settings.python, "-c", f"import ipykernel.kernelapp, sys; print({PROBE_OK!r}, sys.prefix)"]
    else:
        conn = os.path.abspath(rest[rest.index("-f") + 1])
        rest[rest.index("-f") + 1] = conn
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2) if not os.environ.get("AUTOGRADER_DEBUG_KERNEL") else (0,):
            os.dup2(devnull, fd)
        command = [settings.python, "-m", "ipykernel_launcher", *rest]
        import json

        with open(conn) as fh:
            info = json.load(fh)
        shared.add(os.path.dirname(conn))
        if info.get("transport") == "ipc":
            shared.add(os.path.dirname(os.path.abspath(info["ip"])))
    if settings.mode == "bwrap":
        for path in shared:  # never hand the sandbox a shared scratch folder
            if os.path.realpath(path) in ("/", "/tmp", "/var/tmp", os.path.realpath(cwd)):
                sys.exit(f"autograder: refusing to share {path} with the sandbox (set JUPYTER_RUNTIME_DIR)")
        full = bwrap_argv(settings, cwd, sorted(shared), command)
        os.execv(full[0], full)
    else:
        # the same clean environment as inside bwrap: nothing of the grader's environment leaks in
        os.execve(command[0], command, kernel_env(settings, cwd))


if __name__ == "__main__":
    main(sys.argv[1:])
