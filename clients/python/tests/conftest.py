"""A real `tidepool serve` (built by `swift build`) for the client's tests."""
import os

import pytest

from tidepool_client import Client
from tidepool_client.testing import KEY, READ_ONLY_KEY, TidepoolServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
os.environ.setdefault("TIDEPOOL_BIN", os.path.join(ROOT, ".build", "debug", "tidepool"))
__all__ = ["KEY", "READ_ONLY_KEY", "Server"]


def Server(*flags):  # noqa: N802 (a server of the tests' own, with extra flags)
    return TidepoolServer(*flags)


@pytest.fixture(scope="session")
def server():
    with TidepoolServer() as s:
        yield s.port


@pytest.fixture()
def client(server):
    with Client(f"http://127.0.0.1:{server}", api_key=KEY) as c:
        yield c
