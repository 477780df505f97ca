"""`promptembedder bench ray`: indexing with --ray against the single process, on a folder and on synthetic chunks.

For each corpus (the --folder given, and --chunks synthetic one-chunk rows of ~80 tokens in JSONL files of
--rows-per-file): index it into a fresh store in this process (`Collection.index`), then into another fresh
store on a local Ray cluster of --workers embedding actors (`index --ray`). Reports:

  single_s          the single process's wall time
  ray_start_s       ray.init: starting the local cluster (paid once per command; a running cluster skips it)
  ray_job_s         the Ray job: actors starting (each loads the model), loading, chunking, embedding, ingesting
  actor_load_s      the slowest actor's start: importing torch and loading the model (inside ray_job_s)
  overhead_pct      (ray_start_s + ray_job_s) / single_s - 1: what Ray costs; it can come out below zero where
                    one-thread actors embed more efficiently than one process's threads (-5% on the demo, 2 cores)
  worker_chunks_s   chunks per second of embedding inside one actor (its shards' chunks / their seconds)
  ingest_rows_s     shard ingestion on the driver (rows and vectors through ingest.store_batch)
  hours_10m         on paper: 10M chunks / (N actors x worker_chunks_s), for N in --project-workers

Like bench.py, imported when the CLI's parser is built: heavy imports stay inside the functions.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from .bench import machine
from .bench_modes import WORDS_PER_CHUNK, _text, _words

SETTINGS = {"create": True, "progress": False}


def write_synthetic(folder: Path, chunks: int, rows_per_file: int, seed: int) -> None:
    """`chunks` rows of Zipf-drawn made-up words, one chunk each, in JSONL files of rows_per_file rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number, first in enumerate(range(0, chunks, rows_per_file)):
        rows = [json.dumps({"text": _text(_words(rng, WORDS_PER_CHUNK))})
                for _ in range(first, min(chunks, first + rows_per_file))]
        (folder / f"part-{number:05d}.jsonl").write_text("\n".join(rows) + "\n")


def measure(name: str, folder: Path, model, model_name: str, workers: int) -> dict:
    """Single process, then Ray (already started), each into a fresh store."""
    from . import distributed
    from .collection import Store

    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "single") as store, store.open("bench", model, **SETTINGS) as collection:
            started = time.perf_counter()
            single = collection.index([folder])
            single_s = time.perf_counter() - started
        shards: list[dict] = []
        with Store(Path(tmp) / "ray") as store, store.open("bench", model, **SETTINGS) as collection:
            started = time.perf_counter()
            ray = distributed.index(collection, [folder], model_name=model_name, workers=workers,
                                    on_shard=shards.append)
            ray_s = time.perf_counter() - started
    if not single.chunks_embedded:
        raise ValueError(f"{name}: no chunks to embed there (an empty folder, or no file the loaders read)")
    if ray.chunks_embedded != single.chunks_embedded:
        raise RuntimeError(f"{name}: Ray embedded {ray.chunks_embedded} chunks, the single process "
                           f"{single.chunks_embedded}")
    embed_s = sum(s["embed_s"] for s in shards)
    ingest_s = sum(s["ingest_s"] for s in shards)
    return {"corpus": name, "files": single.files, "chunks": single.chunks_embedded, "single_s": round(single_s, 2),
            "single_chunks_s": round(single.chunks_embedded / single_s, 1), "ray_job_s": round(ray_s, 2),
            "shards": len(shards), "actors_used": len({s["worker"] for s in shards}),
            "actor_load_s": round(max((s["load_s"] for s in shards), default=0.0), 2),
            "worker_chunks_s": round(ray.chunks_embedded / embed_s, 1) if embed_s else None,
            "ingest_rows_s": round(ray.chunks_embedded / ingest_s, 1) if ingest_s else None}


def bench_ray(args: argparse.Namespace) -> int:
    from embedder import PromptEmbedder

    from . import distributed

    model = PromptEmbedder.from_pretrained(args.model, dtype=args.dtype)
    model.encode_document(["warm up"])  # the single process's first-use costs stay out of its time
    started = time.perf_counter()
    owned = distributed.connect(num_cpus=args.cpus)
    start_s = time.perf_counter() - started  # 0 where Ray was already up in this process
    try:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            corpora = [(str(args.folder), Path(args.folder))] if args.folder else []
            if args.chunks:
                write_synthetic(Path(tmp) / "synthetic", args.chunks, args.rows_per_file, args.seed)
                corpora.append((f"synthetic {args.chunks} chunks", Path(tmp) / "synthetic"))
            for name, folder in corpora:
                row = measure(name, folder, model, args.model, args.workers)
                row["ray_start_s"] = round(start_s, 2)
                row["overhead_pct"] = round(100 * ((start_s + row["ray_job_s"]) / row["single_s"] - 1), 1)
                if row["worker_chunks_s"]:
                    row["hours_10m"] = {n: round(10_000_000 / (n * row["worker_chunks_s"]) / 3600, 2)
                                        for n in args.project_workers}
                rows.append(row)
                print(f"{name}: {row['chunks']} chunks; single {row['single_s']} s; Ray start {start_s:.1f} s + "
                      f"job {row['ray_job_s']} s ({row['overhead_pct']:+.0f}%); {row['worker_chunks_s']} chunks/s "
                      f"per worker; ingestion {row['ingest_rows_s']} rows/s", flush=True)
    finally:
        if owned:
            distributed.import_ray().shutdown()
    results = {"command": f"promptembedder bench ray {args.folder or ''} --chunks {args.chunks} --model {args.model} "
                          f"--dtype {args.dtype} --workers {args.workers}", "machine": machine(),
               "model": args.model, "dtype": model.dtype_name, "workers": args.workers, "rows": rows}
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 0
