"""Crash safety and concurrency: SIGKILL at random points during indexing, and a searcher beside an indexer.

Starting Python with torch takes seconds, so the kills use a zygote: one subprocess loads the tiny
model once (single-threaded, so forking is safe) and forks a fresh indexing child per attempt; the
test SIGKILLs that child at a random moment. The child is a real process, killed like any other.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from indexer import Store

REPO = Path(__file__).resolve().parent.parent
WORDS = ("search index vector query document model embed chunk text store file park dog cat mat answer "
         "question language python engine retrieve").split()

ZYGOTE = textwrap.dedent("""
    import os, random, sys
    import torch
    torch.set_num_threads(1)  # no OpenMP pool: forking stays safe
    from embedder import PromptEmbedder
    from indexer import Store
    import indexer.collection as collection_module

    model = PromptEmbedder.from_pretrained("tiny", device="cpu")
    model.encode_document(["warm up"])
    store_dir, folder = sys.argv[1], sys.argv[2]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:
            random.seed(os.getpid())
            code = 0
            try:
                store = Store(store_dir)
                with store.open("c", model, create=True, chunk_tokens=16, chunk_overlap=4, progress=False) as c:
                    # saving after every batch puts kill points inside saves; saving rarely leaves
                    # committed rows without saved vectors for the next run to reconcile
                    c.save_interval = random.choice([0.0, 0.5])
                    c.index([folder], batch_chunks=4)
            except BaseException as exc:
                print("child failed:", repr(exc), file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        print(pid, flush=True)
        sys.stdin.readline()  # "reap": the test has killed (or not) the child; only now may its pid be freed
        _, status = os.waitpid(pid, 0)
        print(status, flush=True)
""")


def _write_corpus(folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
        (folder / f"doc{i:03d}.txt").write_text(f"Document {i}. {words}.\n")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _assert_complete(store_dir: Path, folder: Path, model) -> None:
    """Every file present exactly once, every chunk with exactly one vector and nothing else."""
    from sqlalchemy import func, select

    from indexer.store import ChunkRow, DocumentRow

    store = Store(store_dir)
    collection = store.open("c", model, writable=True, progress=False)
    report = collection.index([folder], batch_chunks=4)
    assert not report.problems
    with store.sessions() as session:
        paths = session.scalars(select(DocumentRow.path)).all()
        positions = session.execute(select(ChunkRow.document_id, func.count(), func.max(ChunkRow.position))
                                    .group_by(ChunkRow.document_id)).all()
    expected = sorted(str(p.resolve()) for p in folder.rglob("*") if p.is_file())
    assert sorted(paths) == expected  # each file exactly once, nothing stale
    assert all(count == top + 1 for _, count, top in positions)  # each document's chunks whole, none doubled
    check = collection.check()
    assert check.ok, str(check)
    ids = collection.vectors.ids()
    assert len(ids) == len(np.unique(ids)) == check.chunks
    collection.close()
    store.close()


def _run_child(zygote, kill_after: float | None) -> int:
    """Fork one indexing child; SIGKILL it after kill_after seconds (None: let it finish). Its wait status."""
    zygote.stdin.write("go\n")
    zygote.stdin.flush()
    pid = int(zygote.stdout.readline())
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            os.kill(pid, signal.SIGKILL)  # safe: an unreaped child keeps its pid
        except ProcessLookupError:
            pass
    zygote.stdin.write("reap\n")
    zygote.stdin.flush()
    return int(zygote.stdout.readline())


def test_sigkill_at_random_points_loses_nothing_committed(tmp_path):
    from embedder import PromptEmbedder

    folder, store_dir = tmp_path / "docs", tmp_path / "store"
    _write_corpus(folder / "batch00", 12, seed=0)
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(store_dir), str(folder)], cwd=REPO, env=_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rng = random.Random(1234)
    kills = torn = 0
    try:
        assert zygote.stdout.readline().strip() == "ready"
        # calibrate: how long one run over 12 new files takes on this machine, now
        started = time.perf_counter()
        assert _run_child(zygote, None) == 0
        duration = time.perf_counter() - started
        for attempt in range(1, 13):
            # fresh work every attempt (12 new files, and some rewrites and deletions), killed somewhere inside
            _write_corpus(folder / f"batch{attempt:02d}", 12, seed=attempt)
            if attempt % 3 == 0:
                old = folder / f"batch{attempt - 2:02d}"
                (old / "doc000.txt").write_text(f"Rewritten in attempt {attempt}: {' '.join(WORDS)}\n")
                (old / "doc001.txt").unlink()
            status = _run_child(zygote, rng.uniform(0.05, 0.95) * duration)
            if os.WIFSIGNALED(status):
                kills += 1
            else:
                assert os.WEXITSTATUS(status) == 0, "the indexing child failed (see stderr)"
            # after every kill the store opens and its FAISS files read whole
            store = Store(store_dir)
            reports = store.check("c")
            assert all(r.file_problem is None for r in reports)  # never a half-written file
            assert all(r.keyword_problem is None for r in reports)  # keyword rows commit with the chunk rows
            torn += not all(r.ok for r in reports)  # killed between a commit and the next save
            store.close()
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
    assert kills >= 6, f"only {kills} of 12 runs were killed mid-way"
    print(f"{kills} runs killed, {torn} left rows and vectors to reconcile")
    model = PromptEmbedder.from_pretrained("tiny", device="cpu")
    _assert_complete(store_dir, folder, model)


SEARCHER = textwrap.dedent("""
    import sys, time
    from embedder import PromptEmbedder
    from indexer import Store
    model = PromptEmbedder.from_pretrained("tiny", device="cpu")
    store = Store(sys.argv[1])
    collection = store.open("c", model, writable=False)
    seen = set()
    deadline = time.time() + float(sys.argv[2])
    searches = 0
    while time.time() < deadline:
        hits = collection.search("search the index for a document", k=5)
        assert hits and all(h.text and h.path for h in hits)
        seen.add(collection.vectors.ntotal)
        searches += 1
    print(searches, len(seen), flush=True)
""")


def test_indexer_and_searcher_processes_both_succeed(tmp_path):
    from embedder import PromptEmbedder

    folder, store_dir = tmp_path / "docs", tmp_path / "store"
    _write_corpus(folder / "first", 5, seed=1)
    model = PromptEmbedder.from_pretrained("tiny", device="cpu")
    with Store(store_dir) as store, store.open("c", model, create=True, chunk_tokens=16, chunk_overlap=4,
                                                      progress=False) as collection:
        collection.index([folder])
    _write_corpus(folder / "second", 80, seed=2)
    searcher = subprocess.Popen([sys.executable, "-c", SEARCHER, str(store_dir), "8"], cwd=REPO, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    indexer = subprocess.run([sys.executable, "-m", "app.cli", "index", str(folder), "-c", "c", "--model", "tiny",
                              "--store", str(store_dir), "--batch-chunks", "8"], cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=300)
    out, err = searcher.communicate(timeout=300)
    assert indexer.returncode == 0, indexer.stderr
    assert "80 added" in indexer.stdout
    assert searcher.returncode == 0, err
    searches, _ = map(int, out.split())
    assert searches > 0
    with Store(store_dir) as store:
        assert store.stats("c")[0]["documents"] == 85
        assert all(r.ok for r in store.check("c"))
