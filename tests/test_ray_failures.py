"""A Ray job that fails part-way (indexer/distributed.py): the store stays consistent and the next run completes it.

Apart from test_ray_index.py's shared cluster on purpose: Ray Data releases a failed job's actors only once
nothing references the job (Ray 2.60: its failed tasks' callbacks hold them for a while), so in a Ray the
caller keeps up the next job can wait for their CPUs. A job that started its own Ray (the CLI's case) shuts it
down, which ends them at once; that is what runs here.
"""
from __future__ import annotations

import sys

import pytest

from indexer import distributed
from indexer.collection import Store

ray = pytest.importorskip("ray", reason="Ray is not installed: `pip install 'promptembedder[ray]'` (scripts/setup.sh)")
from test_ray_index import SETTINGS, folder, rows_and_vectors, tiny  # noqa: E402,F401  (its fixtures too)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # FailingEmbedder, defined here


class FailingEmbedder(distributed.ShardEmbedder):
    """Fails on its second batch: a job that dies part-way, after some shards were ingested."""

    def __call__(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 1:
            raise RuntimeError("worker failed")
        return super().__call__(batch)


def test_a_failed_job_leaves_the_store_consistent_and_the_next_run_completes_it(tiny, folder, tmp_path):
    assert not ray.is_initialized()  # each job starts its own local Ray, and shuts it down, as the CLI does
    store = Store(tmp_path / "ray")
    with store.open("c", tiny, **SETTINGS) as opened:
        with pytest.raises(Exception, match="worker failed"):
            distributed.index(opened, [folder], model_name="tiny", workers=1, files_per_shard=2,
                              embedder_class=FailingEmbedder)
    assert all(r.ok for r in store.check("c"))
    assert not any((tmp_path / "ray" / distributed.JOBS_FOLDER).iterdir())
    with store.open("c", tiny, **SETTINGS) as opened:
        done = {r[0] for r in rows_and_vectors(store, opened)[0]}
        report = distributed.index(opened, [folder], model_name="tiny", workers=1)  # one actor starts faster
        assert report.unchanged == len(done) and report.added == 13 - len(done)
    assert all(r.ok for r in store.check("c"))
