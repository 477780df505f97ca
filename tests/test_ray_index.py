"""Indexing on Ray (indexer/distributed.py) gives what the single-process path gives, on a local 2-CPU cluster."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from sqlalchemy import select

from app.cli import main
from indexer import distributed
from indexer.collection import Store
from indexer.store import ChunkRow, DocumentRow

ray = pytest.importorskip("ray", reason="Ray is not installed: `pip install 'promptembedder[ray]'` (scripts/setup.sh)")

SETTINGS = {"create": True, "chunk_tokens": 16, "chunk_overlap": 4, "progress": False}
# two indexes written together (one text pass, two document instructions): each shard carries both
PAIRS = {"instruction": "find notes", "document_instruction": "a note", "also": [("find code", "some code")]}


@pytest.fixture(scope="module")
def cluster():
    distributed.connect(num_cpus=2)  # one cluster for the module: starting Ray costs seconds
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny():
    from embedder import PromptEmbedder

    return PromptEmbedder.from_pretrained("tiny", device="cpu", dtype="fp32")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
    for i in range(12):
        text = " ".join(words[(i + j) % len(words)] for j in range(10 + 7 * i))  # 1 to several chunks each
        (root / ("sub" if i % 2 else "") / f"doc{i}.txt").write_text(f"Document {i}\n\n{text}\n")
    (root / "rows.jsonl").write_text('{"text": "first row", "tag": "a"}\n{"text": "second row", "tag": "b"}\n')
    return root


def rows_and_vectors(store: Store, collection) -> tuple[list[tuple], np.ndarray]:
    """Every chunk row without its id, sorted, and its vector in that order."""
    with store.sessions() as session:
        found = session.execute(select(DocumentRow.path, DocumentRow.content_hash, DocumentRow.size,
                                       DocumentRow.meta, ChunkRow.position, ChunkRow.record, ChunkRow.start,
                                       ChunkRow.end, ChunkRow.title, ChunkRow.text, ChunkRow.meta, ChunkRow.id)
                                .join(ChunkRow, ChunkRow.document_id == DocumentRow.id)
                                .where(DocumentRow.collection_id == collection.row.id)).all()
    found = sorted(found, key=lambda r: (r[0], r[4]))
    stored_ids, stored = collection.vectors.vectors()
    by_id = dict(zip(stored_ids.tolist(), stored))
    return [tuple(r[:-1]) for r in found], np.array([by_id[r[-1]] for r in found])


def test_without_ray_installed_the_message_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["index", str(tmp_path), "-c", "c", "--model", "tiny", "--ray", "--store", str(tmp_path / "s")]) == 2
    assert "pip install 'promptembedder[ray]'" in capsys.readouterr().err
    assert Store(tmp_path / "s").names() == []  # said before the collection was created


def test_a_bad_address_is_a_clear_error():
    from indexer.errors import IndexerError

    if ray.is_initialized():
        pytest.skip("Ray is already up in this process")
    with pytest.raises(IndexerError, match="cannot reach the Ray cluster at"):
        distributed.connect("127.0.0.1:1")


def test_ray_gives_the_single_process_rows_and_vectors_and_stays_incremental(cluster, tiny, folder, tmp_path, capsys):
    single_store, ray_store = Store(tmp_path / "single"), Store(tmp_path / "ray")
    with single_store.open("c", tiny, **SETTINGS, **PAIRS) as single:
        single.index([folder])
        expected_rows, expected_vectors = rows_and_vectors(single_store, single)
        expected_second = rows_and_vectors(single_store, single.siblings[0])[1]
    with ray_store.open("c", tiny, **SETTINGS, **PAIRS) as opened:
        report = distributed.index(opened, [folder], model_name="tiny", workers=2, files_per_shard=3)
        assert report.added == 13 and report.chunks_embedded == len(expected_rows) and not report.problems
        rows, vectors = rows_and_vectors(ray_store, opened)
        second = rows_and_vectors(ray_store, opened.siblings[0])[1]
    assert rows == expected_rows
    np.testing.assert_allclose(vectors, expected_vectors, atol=1e-5)
    np.testing.assert_allclose(second, expected_second, atol=1e-5)
    assert not np.allclose(vectors, second)  # the two instructions give two sets of vectors
    assert not any((tmp_path / "ray" / distributed.JOBS_FOLDER).iterdir())  # shards deleted once ingested

    (folder / "doc2.txt").unlink()
    (folder / "doc4.txt").write_text("a changed document\n")
    # the command line, through the service: Ray is already up here, so --ray uses it
    assert main(["index", str(folder), "-c", "c", "--model", "tiny", "--dtype", "fp32", "--ray", "--ray-workers", "1",
                 "--instruction", "find notes", "--document-instruction", "a note", "--instruction", "find code",
                 "--document-instruction", "some code", "--store", str(tmp_path / "ray"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["removed"], report["updated"], report["unchanged"], report["chunks_embedded"]) == (1, 1, 11, 1)
    leftover = tmp_path / "ray" / distributed.JOBS_FOLDER / "c-killedjob"  # a killed job's shards
    leftover.mkdir()
    (leftover / "0123.jsonl").write_text("{}\n")
    with ray_store.open("c", tiny, **SETTINGS, **PAIRS) as opened:
        report = distributed.index(opened, [folder], model_name="tiny", workers=2)
        assert report.chunks_embedded == 0 and report.unchanged == 12
        paths = {r[0] for r in rows_and_vectors(ray_store, opened)[0]}
    assert not leftover.exists()
    assert str(folder / "doc2.txt") not in paths and str(folder / "doc4.txt") in paths
    assert all(r.ok for r in ray_store.check("c"))


def test_actors_the_cluster_cannot_place_are_a_clear_error_not_a_wait_forever(cluster, tiny, folder, tmp_path,
                                                                              monkeypatch):
    from indexer.errors import IndexerError

    monkeypatch.setattr(distributed, "ACTOR_START_TIMEOUT_S", 5.0)
    # an actor of 4 CPUs on a 2-CPU cluster: Ray would wait for them forever
    monkeypatch.setattr(distributed, "cluster_plan", lambda ray, workers, batches: (1, 4.0, 0.0, 1))
    store = Store(tmp_path / "ray")
    with store.open("c", tiny, **SETTINGS) as opened:
        with pytest.raises(IndexerError, match="did not start 1 embedding actor"):
            distributed.index(opened, [folder], model_name="tiny", workers=1)
    assert all(r.ok for r in store.check("c")) and store.names() == ["c"]
    assert not any((tmp_path / "ray" / distributed.JOBS_FOLDER).iterdir())


class FakeRay:
    def __init__(self, **resources):
        self.resources = resources

    def cluster_resources(self) -> dict:
        return self.resources


def test_actors_follow_the_cluster_one_per_gpu_else_per_cpu_never_more_than_batches():
    assert distributed.cluster_plan(FakeRay(CPU=32.0, GPU=4.0), None, batches=100) == (4, 1.0, 1.0, 1)
    assert distributed.cluster_plan(FakeRay(CPU=32.0, GPU=4.0), None, batches=2)[0] == 2
    actors, cpus, gpus, threads = distributed.cluster_plan(FakeRay(CPU=2.0), 2, batches=100)
    assert (actors, gpus, threads) == (2, 0.0, 1) and actors * cpus + distributed.LOAD_CPUS <= 2.0
    assert distributed.cluster_plan(FakeRay(CPU=16.0), None, batches=100)[0] == 15
    actors, cpus, _, _ = distributed.cluster_plan(FakeRay(CPU=2.0), 4, batches=100)  # more actors than cores
    assert actors == 4 and actors * cpus + distributed.LOAD_CPUS <= 2.0
