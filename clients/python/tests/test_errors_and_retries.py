"""Error classes by code, the version handshake, and the retry rule (with a test double for the
transport where a real server cannot be made to fail on cue)."""
import httpx
import pytest

import tidepool_client
from tidepool_client import (AuthenticationError, BadRequestError, Client, CollectionExistsError,
                             CollectionNotFoundError, DimensionMismatchError, PermissionDeniedError,
                             TidepoolConnectionError, TidepoolError, UnavailableError)

from conftest import KEY, READ_ONLY_KEY


def test_error_classes_carry_the_servers_code_and_message(client, server):
    coll = client.create_collection("errs", dimension=3)
    with pytest.raises(DimensionMismatchError) as e:
        coll.upsert([1], [[1.0, 2.0]])
    assert isinstance(e.value, BadRequestError) and e.value.status == 400 and "dimension" in e.value.message
    with pytest.raises(CollectionNotFoundError):
        client.collection("nope").query([1, 2, 3])
    with pytest.raises(CollectionExistsError):
        client.create_collection("errs", dimension=3)
    with Client(f"http://127.0.0.1:{server}", api_key=READ_ONLY_KEY) as ro:
        with pytest.raises(PermissionDeniedError):
            ro.collection("errs").upsert([1], [[1, 2, 3]])
    with Client(f"http://127.0.0.1:{server}", api_key="wrong") as bad:
        with pytest.raises(AuthenticationError):
            bad.list_collections()
    with pytest.raises(BadRequestError, match="k must be in"):
        coll.query([1, 2, 3], k=-1)
    with pytest.raises(ValueError, match="NaN"):
        coll.upsert([1], [[1, 2, 3]], [{"x": float("nan")}])


def test_versions_match_and_health_reports_the_clients(client):
    assert client.server_version() == tidepool_client.__version__
    health = client._http.get("/health").json()
    assert health == {"status": "ok", "version": tidepool_client.__version__,
                      "client_version": tidepool_client.__version__}


def _double(answers):
    """A transport that answers from a list (a status, or an exception to raise) and counts calls."""
    calls = []

    def handler(request):
        calls.append(request)
        a = answers[min(len(calls) - 1, len(answers) - 1)]
        if isinstance(a, Exception):
            raise a
        body = {"error": {"code": "overloaded" if a == 429 else "unavailable", "message": "busy"}} if a >= 400 \
            else {"results": []}
        return httpx.Response(a, json=body, headers={"Retry-After": "0"} if a == 429 else {})

    return httpx.MockTransport(handler), calls


def test_retry_rule():
    transport, calls = _double([429, 503, 200])
    with Client("http://x", transport=transport, backoff=0.001) as c:
        assert c.collection("c").query([1.0], k=1) == []
    assert len(calls) == 3
    # Not safe to repeat (a delete by filter): 503 is raised at once; 429 (refused before work) is retried.
    transport, calls = _double([503, 200])
    with Client("http://x", transport=transport, backoff=0.001) as c:
        with pytest.raises(UnavailableError):
            c.collection("c").delete(filter={"a": 1})
    assert len(calls) == 1
    transport, calls = _double([httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")])
    with Client("http://x", transport=transport, backoff=0.001, max_retries=1) as c:
        with pytest.raises(TidepoolConnectionError) as e:
            c.collection("c").query([1.0])
    assert len(calls) == 2 and e.value.status == 0 and isinstance(e.value, TidepoolError)
    transport, calls = _double([httpx.ConnectError("refused"), 200])
    with Client("http://x", transport=transport, backoff=0.001) as c:
        assert c.create_collection("c", dimension=1).name == "c"  # nothing was sent: safe even to create
    assert len(calls) == 2


def test_gzip_both_ways(server):
    import numpy as np

    url = f"http://127.0.0.1:{server}"
    with Client(url, api_key=KEY, compression=True) as c:
        coll = c.create_collection("gz", dimension=64, metric="l2")
        vecs = np.random.default_rng(1).standard_normal((500, 64)).astype(np.float32)
        assert coll.upsert(np.arange(500), vecs, [{"text": "x" * 200}] * 500) == 500
        docs = coll.get(list(range(100)))
        assert len(docs) == 100 and np.array_equal(docs[7].vector, vecs[7])
    # On the wire: the answer is gzipped when asked, and not otherwise; other encodings are refused.
    raw = httpx.post(f"{url}/v1/collections/gz/get", json={"ids": list(range(100))},
                     headers={"Authorization": f"Bearer {KEY}", "Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip" and len(raw.json()["documents"]) == 100
    plain = httpx.post(f"{url}/v1/collections/gz/get", json={"ids": [1]},
                       headers={"Authorization": f"Bearer {KEY}", "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    bad = httpx.post(f"{url}/v1/collections/gz/upsert", content=b"not gzip",
                     headers={"Authorization": f"Bearer {KEY}", "Content-Encoding": "gzip"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_body"
    br = httpx.post(f"{url}/v1/collections/gz/upsert", content=b"{}",
                    headers={"Authorization": f"Bearer {KEY}", "Content-Encoding": "br"})
    assert br.status_code == 415
