"""`promptembedder bench search`: FAISS index types on synthetic normalised vectors, and storage ingestion.

Per size and index type: build time, memory, single-query p50/p99 latency, batch QPS and recall@10
against exact search; then rows/s into SQLite + FAISS through the indexer's own write path, with
encoding excluded (precomputed vectors). The vectors are clustered (a mixture of Gaussians), which
is what embeddings look like to an ANN index; uniform random vectors are an option (and the worst case).
A build whose estimated time exceeds --budget-s is reported as skipped, with the estimate.

The CLI builds its parser from this module's names at start-up: numpy, faiss and the indexer load inside the
functions that measure.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

DEFAULT_SIZES = "100000,1000000"
DEFAULT_TYPES = "flat,ivf,ivfpq,hnsw"


# ----- data ---------------------------------------------------------------------------------------
CLUSTERS = 1000
NOISE = 1.0  # per-dimension noise equal to the centres' spread: clusters overlap, as topics do


def synthetic(n: int, dim: int, kind: str, seed: int, centres_from: int | None = None):
    """n unit vectors. clustered: a mixture of CLUSTERS Gaussians (queries are drawn from the same
    mixture: pass the data's seed as centres_from); uniform: directions uniform on the sphere."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    if kind == "clustered":
        centres = np.random.default_rng(seed if centres_from is None else centres_from).standard_normal(
            (CLUSTERS, dim), dtype=np.float32)
    for start in range(0, n, 65536):  # in blocks: bounded temporary memory at 1M x 896
        block = rng.standard_normal((min(65536, n - start), dim), dtype=np.float32)
        if kind == "clustered":
            block = centres[rng.integers(0, CLUSTERS, len(block))] + block * NOISE
        out[start:start + len(block)] = block
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def gflops() -> float:
    """Measured float32 matrix-multiply speed, to estimate build times before starting them."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((2048, 896), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((896, 2048), dtype=np.float32)
    a @ b
    start = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 2048 * 896 * 2048 / (time.perf_counter() - start) / 1e9


# ----- one index type ---------------------------------------------------------------------------
PILOT = 4000


def estimate_build_s(kind: str, data, nlist: int, m: int, ef_construction: int, speed: float) -> float:
    """flat: nothing to build; ivf: k-means (10 iterations on 50 points per list) plus assigning every
    vector, in matmul flops; hnsw: a pilot build on PILOT vectors, scaled by n log n."""
    n, dim = data.shape
    if kind == "flat":
        return 0.0
    if kind == "ivf":
        return 2.0 * dim * nlist * (10 * 50 * nlist + n) / (speed * 1e9)
    if kind == "ivfpq":  # the lists as ivf, then 10 k-means iterations of 256 centroids per sub-space, encoding
        from .vectors import PQ_MIN_TRAIN

        sample = max(50 * nlist, PQ_MIN_TRAIN)
        return 2.0 * dim * (nlist * (10 * sample + n) + 256 * (10 * sample + n)) / (speed * 1e9)
    import numpy as np

    from .vectors import VectorIndex

    pilot = min(n, PILOT)
    start = time.perf_counter()
    VectorIndex.build(np.arange(pilot), data[:pilot], "hnsw", {"M": m, "efConstruction": ef_construction})
    return (time.perf_counter() - start) * (n / pilot) * math.log(n) / math.log(pilot)


def measure(index, queries, truth, k: int, single: int, search_params: dict) -> dict:
    import faiss
    import numpy as np

    params = None
    if "nprobe" in search_params:
        params = faiss.SearchParametersIVF(nprobe=search_params["nprobe"])
    elif "efSearch" in search_params:
        params = faiss.SearchParametersHNSW(efSearch=search_params["efSearch"])
    latencies = []
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one query, one thread: how a server answers; OpenMP only adds sync cost here
    try:
        for q in queries[:single]:
            start = time.perf_counter()
            index.search(q[None], k, params=params)
            latencies.append(time.perf_counter() - start)
    finally:
        faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    _, found = index.search(queries, k, params=params)
    batch_s = time.perf_counter() - start
    recall = np.mean([len(np.intersect1d(f, t)) / k for f, t in zip(found, truth)])
    return {**search_params, "p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "p99_ms": float(np.percentile(latencies, 99) * 1e3), "batch_qps": len(queries) / batch_s,
            f"recall@{k}": float(recall)}


def bench_size(n: int, args: argparse.Namespace, speed: float) -> dict:
    import faiss
    import numpy as np

    from .vectors import IVF_KINDS, PQ_MIN_TRAIN, VectorIndex, ideal_nlist

    print(f"\n== {n:,} vectors, dim {args.dim} ({args.data})", flush=True)
    data = synthetic(n, args.dim, args.data, args.seed)
    queries = synthetic(args.queries, args.dim, args.data, args.seed + 1, centres_from=args.seed)
    ids = np.arange(n, dtype=np.int64)
    nlist = args.nlist or ideal_nlist(n)
    result = {"n": n, "dim": args.dim, "data": args.data, "types": {}}
    truth = None
    for kind in [t.strip() for t in args.types.split(",") if t.strip()]:
        estimate = estimate_build_s(kind, data, nlist, args.hnsw_m, args.ef_construction, speed)
        reason = None
        if estimate > args.budget_s:
            reason = f"estimated build {estimate:.0f} s > budget {args.budget_s:.0f} s (--budget-s)"
        elif kind == "ivfpq" and n < PQ_MIN_TRAIN:
            reason = f"{n:,} vectors are too few to train its codebooks ({PQ_MIN_TRAIN:,})"
        if reason:
            print(f"  {kind}: skipped, {reason}", flush=True)
            result["types"][kind] = {"skipped": reason}
            continue
        before = rss_bytes()
        start = time.perf_counter()
        params = {"M": args.hnsw_m, "efConstruction": args.ef_construction, "pq_m": args.pq_m}
        built = VectorIndex.build(ids, data, kind, params, nlist=nlist if kind in IVF_KINDS else None,
                                  seed=args.seed)
        build_s = time.perf_counter() - start
        memory = rss_bytes() - before
        index = built.index
        if truth is None:  # exact ground truth, from a flat index (the one just built, or a temporary one)
            exact = index if kind == "flat" else _flat(data)
            _, truth = exact.search(queries, args.k)
            del exact
        entry = {"build_s": build_s, "memory_mb": memory / 2**20, "estimated_build_s": estimate, "runs": []}
        if kind in IVF_KINDS:
            entry["nlist"] = nlist
            if kind == "ivfpq":
                entry["pq_m"] = int(index.pq.M)
            settings = [{"nprobe": int(p)} for p in args.nprobe.split(",")]
        elif kind == "hnsw":
            entry.update(M=args.hnsw_m, efConstruction=args.ef_construction)
            settings = [{"efSearch": int(e)} for e in args.ef_search.split(",")]
        else:
            settings = [{}]
        for setting in settings:
            run = measure(index, queries, truth, args.k, args.single, setting)
            entry["runs"].append(run)
            label = ", ".join(f"{k}={v}" for k, v in setting.items()) or "exact"
            print(f"  {kind} ({label}): build {build_s:.1f} s, +{memory / 2**20:.0f} MB, p50 {run['p50_ms']:.2f} ms, "
                  f"p99 {run['p99_ms']:.2f} ms, {run['batch_qps']:.0f} QPS, recall@{args.k} "
                  f"{run[f'recall@{args.k}']:.3f}", flush=True)
        result["types"][kind] = entry
        del built, index
    return result


def _flat(data):
    import faiss

    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    return index


# ----- storage ingestion ------------------------------------------------------------------------
class _PrecomputedModel:
    """Stands in for the embedder: hands out precomputed vectors, so only storage is timed."""

    config = None
    tokenizer = None

    def __init__(self, vectors):
        self.vectors, self.dimension, self.fingerprint, self._next = vectors, vectors.shape[1], "precomputed", 0

    def encode_document(self, texts, **_):
        out = self.vectors[self._next:self._next + len(texts)]
        self._next += len(texts)
        return out


def bench_ingest(rows: int, dim: int, seed: int, batch: int = 256) -> dict:
    import random

    from . import ingest
    from .collection import Store
    from .loaders import LoadedFile, TextRecord

    vectors = synthetic(rows, dim, "uniform", seed)
    rng = random.Random(seed)
    words = "search index vector query document model chunk text store file answer question".split()
    model = _PrecomputedModel(vectors)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        collection = store.open("bench", model, "q", document_instruction="", create=True, progress=False)
        start = time.perf_counter()
        for first in range(0, rows, batch):
            items = []
            for i in range(first, min(rows, first + batch)):
                text = " ".join(rng.choice(words) for _ in range(60))  # ~one 80-token chunk per row
                item = LoadedFile(f"doc-{i}", f"{i:064x}", 0.0, len(text), [TextRecord(text)], {"name": f"doc-{i}"})
                items.append((item, [{"position": 0, "record": 0, "start": 0, "end": len(text), "title": "",
                                      "text": text, "meta": {}}]))
            ingest.write_batch(collection, items)
        ingest.finish(collection)
        seconds = time.perf_counter() - start
        ok = collection.check().ok
        collection.close()
        db_mb = sum(f.stat().st_size for f in Path(tmp).glob("collections.sqlite*")) / 2**20
        store.close()
    print(f"\n== ingestion: {rows:,} rows (dim {dim}) into SQLite + FAISS in {seconds:.1f} s: "
          f"{rows / seconds:,.0f} rows/s (encoding excluded); consistent: {ok}", flush=True)
    return {"rows": rows, "dim": dim, "batch": batch, "seconds": seconds, "rows_per_s": rows / seconds,
            "sqlite_mb": db_mb, "consistent": ok}


def machine() -> dict:
    import faiss

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(), "python": platform.python_version(),
            "date": date.today().isoformat(),
            "load_average_1m": os.getloadavg()[0]}  # other work on the machine slows every figure


def bench_search(args: argparse.Namespace) -> int:
    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    from .vectors import INDEX_TYPES

    kinds = [kind for kind in INDEX_TYPES if kind != "auto"]
    unknown = {t.strip() for t in args.types.split(",")} - set(kinds)
    if unknown:
        raise ValueError(f"unknown index type(s) {', '.join(sorted(unknown))}; choose from {', '.join(kinds)}")
    speed = gflops()
    print(f"machine: {os.cpu_count()} cores, {speed:.0f} GFLOP/s float32 matmul, faiss {faiss.__version__}", flush=True)
    results = {"command": "promptembedder bench search " + " ".join(_argv(args)), "machine": machine(),
               "gflops": speed, "sizes": [bench_size(n, args, speed) for n in sizes]}
    if args.ingest_rows:
        results["ingestion"] = bench_ingest(args.ingest_rows, args.dim, args.seed)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    skip = {"handler", "command", "benchmark", "output"}
    flag = lambda k: "-k" if k == "k" else "--" + k.replace("_", "-")  # noqa: E731
    return [f"{flag(k)} {v}" for k, v in vars(args).items() if k not in skip and v is not None]
