"""The embedding stores behind the evaluation cache and the GPU `embed` command."""
from __future__ import annotations

import numpy as np
import pytest

from training.errors import TrainingError
from training.evaluation.embedding_cache import EmbeddingStore, fill, stores_in


def test_store_finds_texts_in_any_order_after_a_reload_and_dedupes(tmp_path):
    store = EmbeddingStore(tmp_path, "m", "fp", "query", "Find")
    store.add(["a", "b", "a"], np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32))
    assert len(store) == 2
    again = EmbeddingStore(tmp_path, "m", "fp", "query", "Find")
    assert again.missing(["b", "c", "c", "a"]) == ["c"]
    np.testing.assert_array_equal(again.get(["b", "a"]), [[0, 1], [1, 0]])
    # another instruction, side or fingerprint is another store
    assert EmbeddingStore(tmp_path, "m", "fp", "query", "Other").missing(["a"]) == ["a"]
    assert EmbeddingStore(tmp_path, "m", "fp2", "query", "Find").missing(["a"]) == ["a"]
    assert [s["count"] for s in stores_in(tmp_path)] == [2]


def test_fill_encodes_only_what_is_missing_and_float16_stores_read_back_as_float32(tmp_path):
    calls = []

    def encode(texts, instruction):
        calls.append(list(texts))
        return np.array([[len(t), 1.0 / 3] for t in texts])

    store = EmbeddingStore(tmp_path, "m", "fp", "document", None, dtype="float16")
    assert fill(store, ["aa", "b", "ccc"], encode, None, slice_size=2) == 3
    assert calls == [["ccc", "aa"], ["b"]]  # longest first, in slices
    assert fill(store, ["b", "dddd"], encode, None) == 1 and calls[-1] == ["dddd"]
    out = EmbeddingStore(tmp_path, "m", "fp", "document", None).get(["ccc", "b"])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[3, 1 / 3], [1, 1 / 3]], rtol=1e-3)


def test_a_damaged_store_says_how_to_recover(tmp_path):
    store = EmbeddingStore(tmp_path, "m", "fp", "query", None)
    store.add(["a"], np.ones((1, 2)))
    npy, _ = store.paths
    npy.write_bytes(b"junk")
    with pytest.raises(TrainingError, match="delete it to recompute"):
        EmbeddingStore(tmp_path, "m", "fp", "query", None)
