"""A fork server for tests that run many `seqtool` command lines as shell commands.

Each `seqtool` a test's shell runs is a process of its own, as a user's is, but starting one
costs ~0.8 s (the imports, numba's start-up, the kernels loaded from the cache) before it
does anything. The server pays the imports once, then forks a child per command. A tiny client (the `seqtool` on the test's PATH) hands the
server its arguments, working directory, environment and its stdin, stdout and stderr
(the descriptors themselves), and exits with the child's exit code. The child is a fresh
process for everything the command does; only the imports, and the kernels when numba's
cache already holds them, are shared, and other tests (tests/cli) start `python -m seqtool`
processes the ordinary way.

    python tests/forkserver.py SOCKET     serve until killed (started by ``serve``)
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

CLIENT = r'''
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(SOCKET)
except OSError:  # no server: the ordinary way
    os.execv(PYTHON, [PYTHON, "-m", "seqtool", *sys.argv[1:]])
message = json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)})
payload = message.encode()
socket.send_fds(s, [struct.pack("i", len(payload)) + payload], [0, 1, 2])
code = s.recv(4)
sys.exit(struct.unpack("i", code)[0] if len(code) == 4 else 70)
'''


def client_script(socket_path: str) -> str:
    """The `seqtool` of a test's PATH: a Python without site (starts in ~15 ms)."""
    return (f"#!{sys.executable} -IS\nSOCKET = {socket_path!r}\nPYTHON = {sys.executable!r}\n"
            + CLIENT)


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """The client's message (a length, then JSON) and its three descriptors."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    size = struct.unpack("i", data[:4])[0]
    data = data[4:]
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
    return json.loads(data), fds


def _child(message: dict, fds: list[int]) -> None:
    """In the forked child: become the command, then exit with its code."""
    code = 70
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        sys.argv = ["seqtool", *message["argv"]]
        from seqtool.cli import main

        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported as the command's own failure
        import traceback

        traceback.print_exc()
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe (| head)
                pass
        os._exit(code)


def _answer(conn: socket.socket, pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    try:
        conn.sendall(struct.pack("i", code if code >= 0 else 128 - code))
    finally:
        conn.close()


def _load_kernels() -> None:
    """Every cell's kernels in both dtypes (what `seqtool compile` warms), loaded from
    numba's on-disk cache into the server, so that each forked command finds them in memory
    (~0.3-0.6 s a command less). Only when the cache holds them already (a whole-suite run
    has compiled them first: tests/precompile.py); on a cold cache each command loads or
    compiles what it uses, as before, and the server starts at once. The commands' output
    is the same either way: a warm-up that finds its kernels says nothing."""
    from numba import config

    from seqtool.core.rnn import gated, jit

    if config.DISABLE_JIT or not jit.is_cached(gated._lstm_forward_into):
        return
    from precompile import jobs  # beside this file (tests/)
    from seqtool.commands.compile import compile_job

    for cell, dtype in jobs():
        compile_job(cell, dtype)


def main(socket_path: str) -> None:
    # what every command imports, once: seqtool's CLI, numba, the kernels' modules, and
    # the kernels themselves when numba's cache has them
    import seqtool.cli.app  # noqa: F401
    import seqtool.commands.train  # noqa: F401
    import seqtool.core.models  # noqa: F401
    import seqtool.core.rnn.bptt  # noqa: F401
    import seqtool.core.rnn.gated  # noqa: F401
    import seqtool.core.training  # noqa: F401
    _load_kernels()
    server = socket.socket(socket.AF_UNIX)
    server.bind(socket_path)
    server.listen(16)
    Path(socket_path + ".ready").touch()
    while True:
        conn, _ = server.accept()
        message, fds = _receive(conn)
        pid = os.fork()
        if pid == 0:
            server.close()
            conn.close()
            _child(message, fds)
        for fd in fds:
            os.close(fd)
        threading.Thread(target=_answer, args=(conn, pid), daemon=True).start()


def serve(socket_path: str, env: dict, timeout: float = 300.0) -> subprocess.Popen:
    """Start the server on ``socket_path`` (in ``env``) and wait until it listens."""
    process = subprocess.Popen([sys.executable, __file__, socket_path], env=env,
                               stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not Path(socket_path + ".ready").exists():
        if process.poll() is not None:
            raise RuntimeError(f"the fork server ended with code {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the fork server did not start")
        time.sleep(0.05)
    return process


if __name__ == "__main__":
    main(sys.argv[1])
