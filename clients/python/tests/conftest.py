"""A real `tidepool serve` (built by `swift build`) for the client's tests."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tidepool_client import Client

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KEY = "python-client-key"


def binary():
    path = os.environ.get("TIDEPOOL_BIN") or os.path.join(ROOT, ".build", "debug", "tidepool")
    if not os.path.exists(path):
        pytest.fail(f"tidepool binary not found at {path}; run swift build first")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tidepool serve` on a fresh data directory and port, with a read-write and a read-only key."""

    def __init__(self, *flags):
        self.data = tempfile.mkdtemp(prefix="tidepool-py-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TIDEPOOL_API_KEYS=f"{KEY}:rw,readonly-key-1:ro")
        self.proc = subprocess.Popen([binary(), "serve", "--data", self.data, "--port", str(self.port), *flags],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = Client(self.url, api_key=KEY, max_retries=0)
        for _ in range(400):
            try:
                if probe.health():
                    break
            except Exception:
                time.sleep(0.05)
        else:
            self.stop()
            pytest.fail("server did not start")
        probe.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s.port
    s.stop()


@pytest.fixture()
def client(server):
    with Client(f"http://127.0.0.1:{server}", api_key=KEY) as c:
        yield c
