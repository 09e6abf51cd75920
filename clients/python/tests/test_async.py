"""The asyncio client against the real server."""
import asyncio

import numpy as np

from tidepool_client import AsyncClient, CollectionNotFoundError

from conftest import KEY


def test_async_client(server):
    async def main():
        async with AsyncClient(f"http://127.0.0.1:{server}", api_key=KEY) as c:
            coll = await c.create_collection("async", dimension=16, metric="l2")
            vecs = np.random.default_rng(9).standard_normal((3000, 16)).astype(np.float32)
            done = []
            n = await coll.upsert(np.arange(3000), vecs, [{"g": i % 10} for i in range(3000)], batch_size=250,
                                  parallel=4, progress=lambda d, t: done.append(d))
            assert n == 3000 and done[-1] == 3000 and await coll.count() == 3000
            hits = await coll.query(vecs[77], k=1)
            assert hits[0].id == 77
            many = await asyncio.gather(*(coll.query(vecs[i], k=1) for i in range(20)))
            assert [h[0].id for h in many] == list(range(20))
            got = await coll.get([1, 2])
            assert np.array_equal(got[1].vector, vecs[2])
            ids = [d.id async for d in coll.scan(filter={"g": 3}, page_size=100)]
            assert ids == list(range(3, 3000, 10))
            assert await coll.delete(filter={"g": 3}) == 300
            try:
                await c.collection("missing").describe()
                raise AssertionError("expected CollectionNotFoundError")
            except CollectionNotFoundError:
                pass

    asyncio.run(main())
