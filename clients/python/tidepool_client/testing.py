"""A real ``tidepool serve`` for tests: a fresh data directory and port, stopped and removed on exit.

    from tidepool_client.testing import TidepoolServer
    with TidepoolServer() as server:           # the binary: $TIDEPOOL_BIN, else `tidepool` on PATH
        client = server.client()
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Optional

from .client import Client

KEY = "tidepool-test-key"
READ_ONLY_KEY = "tidepool-test-readonly"


class TidepoolServer:
    """``tidepool serve`` on 127.0.0.1 with a read-write key (``KEY``) and a read-only key (``READ_ONLY_KEY``)."""

    def __init__(self, *flags: str, binary: Optional[str] = None, startup_timeout: float = 30.0):
        self.binary = binary or os.environ.get("TIDEPOOL_BIN") or shutil.which("tidepool")
        if not self.binary or not os.path.exists(self.binary):
            raise FileNotFoundError("no tidepool binary: set $TIDEPOOL_BIN or put tidepool on PATH")
        self.key, self.read_only_key = KEY, READ_ONLY_KEY
        self.data = tempfile.mkdtemp(prefix="tidepool-test-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TIDEPOOL_API_KEYS=f"{KEY}:rw,{READ_ONLY_KEY}:ro")
        # The server's log to a file: a pipe nobody reads would stall it once full.
        self.log_path = os.path.join(self.data, "..", os.path.basename(self.data) + ".log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([self.binary, "serve", "--data", self.data, "--port", str(self.port), *flags],
                                        env=env, stdout=subprocess.DEVNULL, stderr=self._log)
        self._wait(startup_timeout)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with Client(self.url, api_key=KEY, max_retries=0, timeout=2) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    with open(self.log_path, "rb") as f:
                        err = f.read().decode(errors="replace")
                    self._remove()
                    raise RuntimeError(f"tidepool serve exited with {self.process.returncode}: {err[-2000:]}")
                try:
                    if probe.health():
                        return
                except Exception:
                    time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"tidepool serve did not answer /health within {timeout} s")

    def client(self, **options: Any) -> Client:
        return Client(self.url, api_key=self.key, **options)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._remove()

    def _remove(self) -> None:
        self._log.close()
        shutil.rmtree(self.data, ignore_errors=True)
        try:
            os.remove(self.log_path)
        except OSError:
            pass

    def __enter__(self) -> "TidepoolServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["TidepoolServer", "KEY", "READ_ONLY_KEY"]
