"""Move a collection from Chroma, LanceDB or Qdrant into Tidepool, through each system's own client:

    python -m tidepool_client.migrate --from chroma --path ./chroma --collection docs \\
        --url http://127.0.0.1:8080 --to-collection docs [--state migrate.json] [--batch 1000]
    python -m tidepool_client.migrate --from qdrant --path ./qdrant ...      # qdrant-client's local mode
    python -m tidepool_client.migrate --from qdrant --source-url http://...  # or a Qdrant server
    python -m tidepool_client.migrate --from lancedb --path ./lance --collection docs ...

Ids, vectors, metadata (payload, other columns) and document texts (Chroma's documents; stored in the
attribute ``--text-attribute``, default ``text``) arrive intact. With ``--state FILE`` the migration is
resumable: the source's position after each batch Tidepool acknowledged is written there, and a rerun
with the same file goes on from it. ``--jsonl`` writes Tidepool's JSON Lines to standard output instead
(``tidepool migrate`` uses it to import into a local data directory); ``--skip N`` starts after N records.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ._wire import dumps, vector_b64

# A batch: the source's position after it (JSON-serializable, for --state), and its records
# (id, vector or None, attributes).
Record = Tuple[Any, Optional[np.ndarray], Dict[str, Any]]
Batch = Tuple[Any, List[Record]]


class MigrateError(Exception):
    pass


def chroma_batches(path: str, name: str, batch: int, start: Any, text_attribute: str) -> Iterator[Batch]:
    import chromadb

    coll = chromadb.PersistentClient(path=path).get_collection(name)
    offset = int(start or 0)
    while True:
        page = coll.get(limit=batch, offset=offset, include=["embeddings", "metadatas", "documents"])
        ids = page["ids"]
        if not ids:
            return
        embeddings = page.get("embeddings")
        metadatas = page.get("metadatas") or [None] * len(ids)
        documents = page.get("documents") or [None] * len(ids)
        records = []
        for i, doc_id in enumerate(ids):
            attrs = dict(metadatas[i] or {})
            if documents[i] is not None:
                if text_attribute in attrs:
                    raise MigrateError(f"Chroma record {doc_id}: metadata key '{text_attribute}' clashes with the "
                                       "document text; give --text-attribute")
                attrs[text_attribute] = documents[i]
            vector = None if embeddings is None or embeddings[i] is None else np.asarray(embeddings[i], np.float32)
            records.append((doc_id, vector, attrs))
        offset += len(ids)
        yield offset, records


def qdrant_batches(path: Optional[str], url: Optional[str], name: str, batch: int, start: Any,
                   vector_name: Optional[str]) -> Iterator[Batch]:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=path) if path else QdrantClient(url=url)
    offset = start
    while True:
        points, next_offset = client.scroll(name, limit=batch, offset=offset, with_payload=True, with_vectors=True)
        records = []
        for p in points:
            v = p.vector
            if isinstance(v, dict):
                if vector_name is None and len(v) == 1:
                    v = next(iter(v.values()))
                elif vector_name is None:
                    raise MigrateError(f"Qdrant collection '{name}' has named vectors {sorted(v)}; give --vector-name")
                else:
                    v = v.get(vector_name)
            records.append((p.id, None if v is None else np.asarray(v, np.float32), dict(p.payload or {})))
        if records:
            yield next_offset, records
        if next_offset is None:
            return
        offset = next_offset


def lancedb_batches(path: str, name: str, batch: int, start: Any, id_column: str,
                    vector_column: str) -> Iterator[Batch]:
    import lancedb

    table = lancedb.connect(path).open_table(name)
    names = table.schema.names
    for c in (id_column, vector_column):
        if c not in names:
            raise MigrateError(f"LanceDB table '{name}' has no column '{c}' (columns: {', '.join(names)})")
    offset = int(start or 0)
    while True:
        # A plain scan (no query vector) in storage order, a page at a time.
        chunk = table.search().offset(offset).limit(batch).to_arrow()
        if chunk.num_rows == 0:
            return
        ids = chunk.column(id_column).to_pylist()
        vectors = chunk.column(vector_column).to_pylist()
        rest = chunk.drop_columns([id_column, vector_column]).to_pylist()
        records = [(i, None if v is None else np.asarray(v, np.float32), {k: x for k, x in a.items() if x is not None})
                   for i, v, a in zip(ids, vectors, rest)]
        offset += chunk.num_rows
        yield offset, records


def _id(x: Any) -> Any:
    return x if isinstance(x, (int, str)) else str(x)  # UUIDs and other id types as strings


def migrate(args: argparse.Namespace) -> int:
    state: Dict[str, Any] = {}
    key = {"from": args.source, "path": args.path or args.source_url, "collection": args.collection}
    if args.state and os.path.exists(args.state):
        with open(args.state) as f:
            state = json.load(f)
        if state.get("source") != key:
            raise MigrateError(f"{args.state} records another migration ({state.get('source')}); give another --state")
    start, done = state.get("position"), int(state.get("done", 0))
    if args.source == "chroma":
        batches = chroma_batches(args.path, args.collection, args.batch, start, args.text_attribute)
    elif args.source == "qdrant":
        batches = qdrant_batches(args.path, args.source_url, args.collection, args.batch, start, args.vector_name)
    else:
        batches = lancedb_batches(args.path, args.collection, args.batch, start, args.id_column, args.vector_column)
    skip = args.skip
    target = None
    if not args.jsonl:
        from .client import Client

        target = Client(args.url, args.api_key).collection(args.to_collection or args.collection)
    bar = None
    if args.progress and not args.jsonl:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(unit="doc", desc=f"{args.source} → tidepool", initial=done)
        except ImportError:
            pass
    for position, records in batches:
        if skip:
            dropped = min(skip, len(records))
            records, skip = records[dropped:], skip - dropped
        if args.jsonl:
            for doc_id, v, attrs in records:
                o: Dict[str, Any] = {"id": _id(doc_id)}
                if v is not None:
                    o["vector_b64"] = vector_b64(v)
                if attrs:
                    o["attributes"] = attrs
                sys.stdout.write(dumps(o) + "\n")
            sys.stdout.flush()
        elif records:
            assert target is not None
            create = {"metric": args.metric}
            target.upsert([_id(r[0]) for r in records], [r[1] for r in records], [r[2] for r in records],
                          create=create)
        done += len(records)
        if bar is not None:
            bar.update(len(records))
        if args.state:  # after Tidepool acknowledged the batch: a rerun goes on from here
            tmp = args.state + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"source": key, "position": position, "done": done}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, args.state)
    if bar is not None:
        bar.close()
    if not args.jsonl:
        print(f"migrated {done} documents", file=sys.stderr)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tidepool_client.migrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", required=True, choices=["chroma", "lancedb", "qdrant"])
    ap.add_argument("--path", help="the source's local directory (Chroma, LanceDB, Qdrant local mode)")
    ap.add_argument("--source-url", help="a Qdrant server instead of --path")
    ap.add_argument("--collection", required=True, help="the source collection (LanceDB: table)")
    ap.add_argument("--url", help="the Tidepool server (default $TIDEPOOL_URL)")
    ap.add_argument("--api-key", help="default $TIDEPOOL_API_KEY")
    ap.add_argument("--to-collection", help="the Tidepool collection (default: the source's name)")
    ap.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"], help="for a new collection")
    ap.add_argument("--text-attribute", default="text", help="Chroma: the attribute for document texts")
    ap.add_argument("--vector-name", help="Qdrant: which named vector")
    ap.add_argument("--id-column", default="id", help="LanceDB")
    ap.add_argument("--vector-column", default="vector", help="LanceDB")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--state", help="a file recording progress, for resuming")
    ap.add_argument("--skip", type=int, default=0, help="records to skip first")
    ap.add_argument("--jsonl", action="store_true", help="write JSON Lines to standard output")
    ap.add_argument("--progress", action="store_true", help="a tqdm progress bar")
    args = ap.parse_args(argv)
    if args.source != "qdrant" and not args.path:
        ap.error(f"--from {args.source} needs --path")
    if args.source == "qdrant" and not (args.path or args.source_url):
        ap.error("--from qdrant needs --path or --source-url")
    try:
        return migrate(args)
    except (MigrateError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
