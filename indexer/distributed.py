"""Indexing on a Ray cluster (issue 16): the same rows and vectors as `Collection.index`, embedded in parallel.

    ray.data over the files to (re)load            (ingest.plan: new and changed files; gone ones removed)
      -> map_batches(load_and_chunk)               the indexer's loaders and chunking, the model's tokenizer
      -> map_batches(ShardEmbedder, concurrency=N)  one PromptEmbedder per actor (a GPU each where the cluster
                                                   has them), soft prompts computed once per actor; each batch
                                                   of files written as a shard: <stem>.jsonl rows + <stem>.npz
      -> the driver ingests each shard as it arrives through ingest.store_batch (the single-process write path)
         and deletes it

Shards live in a job folder, `<store>/ray-jobs/<collection>-<random>/` by default (`shard_root` moves it: on a
cluster of several machines it must be a folder every worker and the driver see). Kill-safety is the write
path's: each shard's rows commit in one transaction and the vectors follow, so a killed job leaves what was
ingested (unchanged next run) and the rest is re-embedded next run; a killed job's shards are deleted by the
next run on that collection (it holds the collection's write lock, so no live job owns them).

Ray is an optional extra (`pip install promptembedder[ray]`), imported only here and only when used.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .errors import IndexerError
from .ingest import IndexReport, admit, chunk_records, embed_texts, finish, plan, store_batch
from .loaders import LoadedFile, LoaderOptions, Problem, iter_loaded

if TYPE_CHECKING:
    from .collection import Collection

FILES_PER_SHARD = 16  # files per shard: what one actor call embeds and the driver commits at once
LOAD_CPUS = 0.25  # loading and chunking is light next to embedding; the actors get the rest of the CPUs
# Ray Data waits forever for actors the cluster cannot place (too few resources, or another job holds them)
ACTOR_START_TIMEOUT_S = float(os.environ.get("PROMPTEMBEDDER_RAY_ACTOR_TIMEOUT", 600))
PROJECT_ROOT = Path(__file__).resolve().parents[1]
JOBS_FOLDER = "ray-jobs"


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise IndexerError("--ray needs Ray: install the extra with `pip install 'promptembedder[ray]'` "
                           "(scripts/setup.sh does)") from None
    return ray


def local_env() -> dict[str, str]:
    """Environment for a local cluster's workers: this checkout first on the path (the venv may hold another
    checkout's editable install), and the PROMPTEMBEDDER_* and offline settings of this process."""
    env = {key: value for key, value in os.environ.items()
           if key.startswith("PROMPTEMBEDDER_") or key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return env


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address`, or start a local one (sized to the machine unless num_cpus is given);
    True when this call started or joined it (the caller shuts it down), False when Ray was already up."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address:
        check_reachable(address)
    try:
        if address:
            # the cluster's workers run their own install of promptembedder (see the README)
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, runtime_env={"env_vars": local_env()}, include_dashboard=False,
                     logging_level="ERROR", log_to_driver=False)
    except Exception as exc:  # ConnectionError, a bad address, a cluster of another Ray version: all the user's
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise IndexerError(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    return True


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port that answers, checked first: Ray itself retries a dead address for minutes."""
    if address == "auto":  # the cluster this machine belongs to: Ray finds it
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except ValueError:
        raise IndexerError(f"Ray address {address!r} is not HOST:PORT or ray://HOST:PORT") from None
    except OSError as exc:
        raise IndexerError(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


def load_and_chunk(batch: dict[str, np.ndarray], *, options: LoaderOptions, tokenizer, tokens: int, overlap: int,
                   known_hashes: dict[str, str]) -> dict[str, np.ndarray]:
    """Ray stage 1: each file read by the indexer's loaders and chunked as ingest chunks it; one JSON entry
    per file. A file whose content is unchanged (a new mtime only) is not chunked: the driver only touches it."""
    entries = []
    for item in iter_loaded([Path(p) for p in batch["path"]], options):
        if isinstance(item, Problem):
            entries.append({"problem": [item.path, item.message]})
            continue
        unchanged = known_hashes.get(item.path) == item.content_hash
        entries.append({"path": item.path, "content_hash": item.content_hash, "mtime": item.mtime, "size": item.size,
                        "metadata": item.metadata, "problems": [[p.path, p.message] for p in item.problems],
                        "chunks": None if unchanged else chunk_records(item.records, tokenizer, tokens, overlap)})
    return {"entry": np.array([json.dumps(e) for e in entries], dtype=object)}


class ShardEmbedder:
    """Ray stage 2, one per actor: loads the model once, embeds each batch's chunks and writes them as a shard."""

    def __init__(self, model_name: str, backbone: str | None, dtype: str | None, fingerprint: str,
                 instructions: list[str], folder: str, threads: int):
        started = time.perf_counter()
        import torch

        from embedder import PromptEmbedder

        torch.set_num_threads(threads)
        self.model = PromptEmbedder.from_pretrained(model_name, backbone=backbone, dtype=dtype)
        if self.model.fingerprint != fingerprint:
            raise IndexerError(f"the Ray workers' {model_name!r} is not the driver's model (fingerprint "
                               f"{self.model.fingerprint}, not {fingerprint}): install the same model on the cluster")
        self.instructions, self.folder = instructions, Path(folder)
        self.load_s = time.perf_counter() - started  # this actor's share of the fixed cost

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        entries = [json.loads(e) for e in batch["entry"]]
        texts = [chunk["text"] for e in entries for chunk in e.get("chunks") or ()]
        if texts:  # each instruction's soft prompt is computed on the first call and cached by the model
            vectors = embed_texts(self.model, texts, self.instructions)
        else:
            vectors = [np.zeros((0, self.model.dimension), np.float32) for _ in self.instructions]
        seconds = time.perf_counter() - started
        stem = write_shard(self.folder, entries, vectors)
        return {"shard": np.array([str(stem)], dtype=object), "chunks": np.array([len(texts)]),
                "embed_s": np.array([seconds]), "load_s": np.array([self.load_s]), "worker": np.array([os.getpid()])}


def write_shard(folder: Path, entries: list[dict], vectors: Sequence[np.ndarray]) -> Path:
    """<stem>.jsonl (one entry per file) and <stem>.npz (v0, v1, ...: one array per index), each written aside
    and renamed; the .npz last, so a shard with its .npz is whole."""
    stem = folder / uuid.uuid4().hex
    rows = stem.with_suffix(".jsonl")
    with open(rows.with_suffix(".jsonl.tmp"), "w", encoding="utf-8") as out:
        out.writelines(json.dumps(e) + "\n" for e in entries)
    os.replace(rows.with_suffix(".jsonl.tmp"), rows)
    with open(stem.with_suffix(".npz.tmp"), "wb") as out:
        np.savez(out, **{f"v{i}": v for i, v in enumerate(vectors)})
    os.replace(stem.with_suffix(".npz.tmp"), stem.with_suffix(".npz"))
    return stem


def ingest_shard(collection: Collection, stem: Path, known: dict, report: IndexReport) -> None:
    """One shard through the single-process write path (admit, then store_batch), then deleted."""
    entries = [json.loads(line) for line in stem.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()]
    with np.load(stem.with_suffix(".npz")) as data:
        vectors = [data[f"v{i}"] for i in range(len(data.files))]
    batch, rows, start = [], [], 0
    for entry in entries:
        if "problem" in entry:
            report.problems.append(Problem(*entry["problem"]))
            continue
        chunks = entry["chunks"]
        item = LoadedFile(entry["path"], entry["content_hash"], entry["mtime"], entry["size"], [], entry["metadata"],
                          [Problem(*p) for p in entry["problems"]])
        count = len(chunks or ())
        if admit(collection, item, None, known, report) and admit(collection, item, chunks, known, report):
            batch.append((item, chunks))
            rows.extend(range(start, start + count))
        start += count
    if batch:
        store_batch(collection, batch, [v[rows] for v in vectors])
        report.chunks_embedded += len(rows)
    stem.with_suffix(".npz").unlink()
    stem.with_suffix(".jsonl").unlink()


def cluster_plan(ray, workers: int | None, batches: int) -> tuple[int, float, float, int]:
    """(actors, CPUs per actor, GPUs per actor, torch threads per actor) for the cluster's resources; never
    more actors than batches (each actor loads a model: seconds to start)."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1.0), int(resources.get("GPU", 0))
    if gpus:
        actors = min(workers or gpus, batches)
        return actors, 1.0, 1.0, 1
    actors = min(workers or max(1, int(cpus - LOAD_CPUS)), batches)
    per_actor = (cpus - LOAD_CPUS) / actors  # fractions are fine to Ray; more would leave an actor unplaced
    return actors, per_actor, 0.0, max(1, int(per_actor + 0.5))


def index(collection: Collection, paths: Sequence[str | os.PathLike], *, model_name: str,
          backbone: str | None = None, options: LoaderOptions | None = None, address: str | None = None,
          workers: int | None = None, files_per_shard: int | None = None, shard_root: str | os.PathLike | None = None,
          embedder_class: type = ShardEmbedder, on_shard: Callable[[dict], None] | None = None) -> IndexReport:
    """Index files and folders on a Ray cluster: what `Collection.index` does, the embedding spread over
    `workers` actors (default: one per GPU, else one per CPU). model_name must load on every worker
    (a preset, a registry backbone, or a checkpoint folder the workers see) as the collection's model.
    address: a running cluster's ("ray://host:10001" or "host:6379"); None joins the Ray this process
    already started, or starts a local one. on_shard: called with each shard's figures once it is ingested
    (chunks, embed_s, load_s and worker from the actor, ingest_s from the driver; the benchmark's).
    A job that fails leaves the collection consistent (each shard is committed whole) and shuts down the Ray
    it started, which ends its actors. In a Ray the caller keeps up, Ray Data releases a failed job's actors
    only once nothing references the job (Ray 2.60: its failed tasks' callbacks hold them for a while), so the
    next job may wait for their CPUs, at most ACTOR_START_TIMEOUT_S before a clear error."""
    collection._require_writable()
    ray = import_ray()
    options = options or LoaderOptions()
    started = time.perf_counter()
    report = IndexReport(collection.name, completed=collection.completed)
    root = Path(shard_root or collection.store.directory / JOBS_FOLDER).expanduser()
    job = root / f"{collection.name}-{uuid.uuid4().hex[:12]}"
    for leftover in root.glob(f"{collection.name}-*"):  # a killed job's shards: we hold the write lock
        shutil.rmtree(leftover, ignore_errors=True)
    to_load, known = plan(collection, paths, report)
    owned = connect(address) if to_load else False  # nothing new or changed: no cluster needed
    try:
        if to_load:
            job.mkdir(parents=True, mode=0o700)  # shards hold the user's text, like the store
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars, context.wait_for_min_actors_s = collection.progress, ACTOR_START_TIMEOUT_S
            if not collection.progress:  # Ray Data's per-dataset INFO lines; warnings still show
                logging.getLogger("ray.data").setLevel(logging.WARNING)
            actors, cpus, gpus, threads = cluster_plan(ray, workers, batches=len(to_load))
            # a few batches per actor, so a slow one does not hold the others back; at most FILES_PER_SHARD
            files_per_shard = files_per_shard or max(1, min(FILES_PER_SHARD, len(to_load) // (2 * actors)))
            targets = [collection, *collection.siblings]
            files = ray.data.from_items([{"path": str(p)} for p in to_load],
                                        override_num_blocks=max(1, min(len(to_load), 4 * actors)))
            loaded = files.map_batches(
                load_and_chunk, batch_size=files_per_shard, num_cpus=LOAD_CPUS, batch_format="numpy",
                fn_kwargs={"options": options, "tokenizer": collection.model.tokenizer,
                           "tokens": collection.row.chunk_tokens, "overlap": collection.row.chunk_overlap,
                           "known_hashes": {str(p): known[str(p)][0] for p in to_load if str(p) in known}})
            shards = loaded.map_batches(
                embedder_class, batch_size=files_per_shard, compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=cpus, num_gpus=gpus, batch_format="numpy",
                fn_constructor_kwargs={"model_name": model_name, "backbone": backbone,
                                       "dtype": getattr(collection.model, "dtype_name", None),
                                       "fingerprint": collection.model.fingerprint,
                                       "instructions": [t.document_instruction for t in targets],
                                       "folder": str(job), "threads": threads})
            rows = iter(shards.iter_rows())
            try:
                for row in rows:
                    ingesting = time.perf_counter()
                    ingest_shard(collection, Path(row["shard"]), known, report)
                    if on_shard is not None:
                        on_shard({**row, "ingest_s": time.perf_counter() - ingesting})
            except ray.exceptions.GetTimeoutError:
                raise IndexerError(
                    f"the Ray cluster did not start {actors} embedding actor(s) of {cpus:g} CPU(s) and {gpus:g} "
                    f"GPU(s) each within {ACTOR_START_TIMEOUT_S:g} s: it has too few free resources (another job "
                    f"may hold them; see `ray status`), or the model loads too slowly there "
                    f"(PROMPTEMBEDDER_RAY_ACTOR_TIMEOUT sets the wait); nothing was stored from this job") from None
            finally:
                rows.close()  # stops the job's executor now, not when the iterator is collected
        finish(collection)
    finally:
        shutil.rmtree(job, ignore_errors=True)
        if owned:
            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report
