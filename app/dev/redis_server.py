"""Starts a private ``redis-server`` on a free port: for ``tide dev``, ``tide bench`` and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from app.process.children import die_with_parent


class RedisServerUnavailable(RuntimeError):
    """No ``redis-server`` binary on PATH, or it would not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throw-away ``redis-server`` (no persistence unless ``appendonly``) on 127.0.0.1.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. :meth:`kill` and
    :meth:`start` again simulate a crash and restart (with AOF, data survives).
    """

    def __init__(
        self,
        port: int | None = None,
        appendonly: bool = False,
        own_process_group: bool = False,
        die_with_parent: bool = False,
        wrapper: Sequence[str] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerUnavailable(
                "redis-server was not found on PATH (Debian: apt-get install redis-server)"
            )
        self.binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        # own group: a Ctrl-C at the terminal reaches only the parent, which stops this server
        # after everything that still needs it (``tide dev``'s draining workers)
        self.own_process_group = own_process_group
        # ends when this process does, even by SIGKILL: start it from the main thread then
        # (see app.process.children)
        self.die_with_parent = die_with_parent
        # a command the server runs under (``app.dev.script_cost``: valgrind)
        self.wrapper = list(wrapper)
        self.dir = Path(tempfile.mkdtemp(prefix="tide-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        args = [
            *self.wrapper,
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0 if self.own_process_group else None,
            preexec_fn=die_with_parent() if self.die_with_parent else None,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerUnavailable(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RedisServerUnavailable(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
