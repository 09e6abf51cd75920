import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path[:0] = [os.path.join(ROOT, "clients", "python"), os.path.join(ROOT, "integrations", "llamaindex")]
os.environ.setdefault("TIDEPOOL_BIN", os.path.join(ROOT, ".build", "debug", "tidepool"))

from tidepool_client.testing import TidepoolServer  # noqa: E402


@pytest.fixture(scope="session")
def tidepool():
    with TidepoolServer() as server:
        yield server
