"""Kernel command of the ``autograder-sandbox`` kernelspec: set limits, then exec the kernel (in bwrap).

Called by jupyter_client as ``python -m autograder.kernel_launcher SETTINGS.json -f CONNECTION_FILE [...]``
with the notebook's folder as the current directory.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

from .sandbox import bwrap_argv, kernel_env


def main(argv: list[str]) -> None:
    settings = json.loads(open(argv[0]).read())
    rest = argv[1:]
    cwd = os.getcwd()
    conn = os.path.abspath(rest[rest.index("-f") + 1])
    rest[rest.index("-f") + 1] = conn
    mem = settings["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = settings["max_file_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead of killing
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2) if not os.environ.get("AUTOGRADER_DEBUG_KERNEL") else (0,):
        os.dup2(devnull, fd)
    command = [settings["python"], "-m", "ipykernel_launcher", *rest]
    if settings["mode"] == "bwrap":
        info = json.loads(open(conn).read())
        shared = {os.path.dirname(conn)}
        if info.get("transport") == "ipc":
            shared.add(os.path.dirname(os.path.abspath(info["ip"])))
        for path in shared:  # never hand the sandbox a shared scratch folder
            if os.path.realpath(path) in ("/", "/tmp", "/var/tmp", os.path.realpath(cwd)):
                sys.exit(f"autograder: refusing to share {path} with the sandbox (set JUPYTER_RUNTIME_DIR)")
        full = bwrap_argv(settings, cwd, sorted(shared), command)
        os.execv(full[0], full)
    else:
        os.execve(command[0], command, {**os.environ, **kernel_env(settings, cwd)})


if __name__ == "__main__":
    main(sys.argv[1:])
