"""`promptembedder bench modes`: single-query latency of semantic, keyword and hybrid search, encoding included.

Builds a collection of --chunks synthetic chunks (words drawn from a Zipf distribution over a made-up
vocabulary, so some words are in most chunks and most words in few, as in text; queries of 3-6 words
leave out the 100 most frequent, which play the stop words) through the indexer's
own write path, with precomputed random vectors of the model's dimension (the semantic ranking's cost
does not depend on what the vectors mean). Then times --queries searches one at a time per mode,
through `Collection.search` as `promptembedder search` runs it: the query embedded by the real model,
FAISS, the FTS5 keyword index, fusion, grouping, snippets.

Like bench.py, imported when the CLI's parser is built: heavy imports stay inside the functions.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from .bench import _PrecomputedModel, machine, synthetic

VOCABULARY = 30_000
WORDS_PER_CHUNK = 60  # about one 80-token chunk
FUNCTION_WORDS = 100  # the most frequent ranks play the stop words: in chunks, never in queries (as in text,
#                       where the keyword search drops them from a query)


def _words(rng, count: int, skip: int = 0):
    """Made-up word ids drawn Zipf-like (rank r with probability ~ 1/r), leaving out the `skip` most frequent."""
    import numpy as np

    ranks = np.arange(1, VOCABULARY + 1)
    p = np.where(ranks > skip, 1.0 / ranks, 0.0)
    return rng.choice(VOCABULARY, size=count, p=p / p.sum())


def _text(ids) -> str:
    return " ".join(f"w{i}" for i in ids)


def build(directory: Path, chunks: int, dimension: int, seed: int, batch: int = 1000):
    """A collection of `chunks` one-chunk documents with random vectors; returns (store, seconds)."""
    import numpy as np

    from . import ingest
    from .collection import Store
    from .loaders import LoadedFile, TextRecord

    rng = np.random.default_rng(seed)
    writer = _PrecomputedModel(synthetic(chunks, dimension, "clustered", seed))
    store = Store(directory)
    started = time.perf_counter()
    with store.open("bench", writer, "q", document_instruction="", create=True, progress=False) as collection:
        for first in range(0, chunks, batch):
            items = []
            for i in range(first, min(chunks, first + batch)):
                text = _text(_words(rng, WORDS_PER_CHUNK))
                item = LoadedFile(f"/bench/doc-{i}.txt", f"{i:064x}", 0.0, len(text), [TextRecord(text)], {"name": f"doc-{i}"})
                items.append((item, [{"position": 0, "record": 0, "start": 0, "end": len(text), "title": "",
                                      "text": text, "meta": {}}]))
            ingest.write_batch(collection, items)
            if (first // batch) % 10 == 9:
                print(f"building: {min(chunks, first + batch):,}/{chunks:,} chunks", flush=True)
        ingest.finish(collection)  # as `index` ends: the index type the size calls for (IVF from 50,000 vectors)
    return store, time.perf_counter() - started


class _QueryModel:
    """The real model for queries, under the fingerprint the precomputed vectors were stored with;
    with `remembered`, a query seen before is answered from memory (to time the search alone)."""

    config = None

    def __init__(self, model):
        self.model, self.dimension, self.fingerprint = model, model.dimension, "precomputed"
        self.remembered: dict[str, object] | None = None

    def encode(self, texts, **kwargs):
        if self.remembered is not None and len(texts) == 1 and texts[0] in self.remembered:
            return self.remembered[texts[0]]
        vectors = self.model.encode(texts, **kwargs)
        if self.remembered is not None and len(texts) == 1:
            self.remembered[texts[0]] = vectors
        return vectors


def bench_modes(args: argparse.Namespace) -> int:
    import numpy as np

    from embedder import PromptEmbedder

    model = PromptEmbedder.from_pretrained(args.model, dtype=args.dtype)
    rng = np.random.default_rng(args.seed + 1)
    queries = [_text(_words(rng, int(rng.integers(3, 7)), FUNCTION_WORDS)) for _ in range(args.queries)]
    results = {"command": f"promptembedder bench modes --chunks {args.chunks} --queries {args.queries} "
                          f"--model {args.model} --dtype {args.dtype} -k {args.k}",
               "machine": machine(), "model": args.model, "dtype": model.dtype_name, "chunks": args.chunks}
    with tempfile.TemporaryDirectory() as tmp:
        store, seconds = build(Path(tmp), args.chunks, model.dimension, args.seed)
        results["build_s"] = round(seconds, 1)
        query_model = _QueryModel(model)
        with store.open("bench", query_model, "q", writable=False) as collection:
            results["index"] = collection.vectors.kind
            model.encode(["warm up"])
            timings = {"encode only": [_timed(lambda q: model.encode([q]), q) for q in queries]}
            for mode in ("keyword", "semantic", "hybrid"):
                collection.search(queries[0], k=args.k, mode=mode)  # warm: first FTS5 and FAISS calls
                timings[mode] = [_timed(lambda q: collection.search(q, k=args.k, mode=mode), q) for q in queries]
            query_model.remembered = {}
            for query in queries:
                collection.search(query, k=args.k, mode="semantic")  # each query embedded once, remembered
            for mode in ("semantic", "hybrid"):
                timings[f"{mode}, query vector given"] = [
                    _timed(lambda q: collection.search(q, k=args.k, mode=mode), q) for q in queries]
        store.close()
    results["latency_ms"] = {mode: {"p50": round(float(np.percentile(t, 50)), 1),
                                    "p99": round(float(np.percentile(t, 99)), 1)} for mode, t in timings.items()}
    print(f"{args.chunks:,} chunks ({results['index']} index), {args.queries} single queries, k={args.k}, "
          f"model {args.model} ({model.dtype_name}):")
    for mode, row in results["latency_ms"].items():
        print(f"  {mode:30s} p50 {row['p50']:7.1f} ms   p99 {row['p99']:7.1f} ms")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 0


def _timed(call, query) -> float:
    started = time.perf_counter()
    call(query)
    return 1000 * (time.perf_counter() - started)


def bench_instructions(args: argparse.Namespace) -> int:
    from embedder import PromptEmbedder

    from .collection import Store
    from .loaders import walk

    model = PromptEmbedder.from_pretrained(args.model, dtype=args.dtype)
    files = walk([args.folder])[0][:args.limit]
    if not files:
        raise ValueError(f"no files to index under {args.folder}")
    ks = [int(x) for x in args.ks.split(",")]
    pairs = [(f"Query instruction {i}", f"Represent the document for task {i}") for i in range(max(ks))]
    model.encode_document_many(["warm up"], [document for _, document in pairs])  # soft prompts: once, cached
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp)) as store:  # unmeasured: first-use costs
        with store.open("warm", model, create=True, progress=False) as collection:
            collection.index(files[:2])
    rows, first = [], None
    for k in ks:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp)) as store:
            started = time.perf_counter()
            with store.open("bench", model, pairs[0][0], document_instruction=pairs[0][1], create=True,
                            progress=False, also=pairs[1:k]) as collection:
                report = collection.index(files)
            seconds = time.perf_counter() - started
        first = first or seconds
        rows.append({"k": k, "seconds": round(seconds, 1), "chunks": report.chunks_embedded,
                     "ratio_to_first": round(seconds / first, 2)})
        print(f"k = {k}: {report.chunks_embedded} chunks x {k} indexes in {seconds:.1f} s "
              f"({rows[-1]['ratio_to_first']:.2f}x k = {ks[0]})", flush=True)
    results = {"command": f"promptembedder bench instructions {args.folder} --model {args.model} --dtype "
                          f"{args.dtype} --ks {args.ks} --limit {args.limit}", "machine": machine(),
               "model": args.model, "dtype": model.dtype_name, "files": len(files), "rows": rows}
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 0
