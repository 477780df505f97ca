"""Indexer: loading, chunking, incremental indexing, search and filters, deletes, FAISS types, consistency, CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from indexer import Store, IndexerError, LoaderOptions
from indexer.chunking import chunk_text
from indexer.loaders import read_file, walk
from indexer.vectors import VectorIndex, desired_kind

SENTENCES = [
    "The cat sat on the mat.", "A dog runs in the park.", "Python is a programming language.",
    "Search engines index documents and answer queries.", "Given a medical question, retrieve the answer.",
    "The index stores the vectors; the database stores the text.", "Queries and documents are written differently.",
    "When a file changes, only that file is embedded again.",
]


class Counting:
    """A model wrapper that counts the documents it embeds."""

    def __init__(self, model):
        self.model, self.documents = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode_document(self, texts, **kwargs):
        self.documents += len(texts)
        return self.model.encode_document(texts, **kwargs)


@pytest.fixture(scope="module")
def tiny():
    from embedder import PromptEmbedder

    return PromptEmbedder.from_pretrained("tiny", device="cpu")


@pytest.fixture
def model(tiny):
    return Counting(tiny)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    for i, text in enumerate(SENTENCES[:6]):
        (root / ("sub" if i % 2 else "") / f"doc{i}.txt").write_text(text + "\n")
    return root


def open_collection(model, name="c", **kwargs):
    store = Store()
    kwargs = {"create": True, "chunk_tokens": 16, "chunk_overlap": 4, "progress": False, **kwargs}
    return store, store.open(name, model, **kwargs)


# ----- loading and chunking ---------------------------------------------------------------------
def test_malformed_inputs_get_messages_and_the_rest_is_indexed(tmp_path, model):
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "good.txt").write_text("The cat sat on the mat.")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.md").write_text("   \n\n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "huge.txt").write_text("word " * 400_000)  # 2 MB, over the 1 MB limit below
    (root / "broken.json").write_text('{"text": "unterminated')
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (root / "rows.jsonl").write_text('{"text": "A dog runs in the park.", "year": 2020}\nnot json\n{"body": "x"}\n')
    (root / "nofield.json").write_text('[{"body": "no text field"}]')
    unreadable = root / "secret.txt"
    unreadable.write_text("hidden")
    unreadable.chmod(0)
    store, collection = open_collection(model)
    report = collection.index([root, tmp_path / "missing-folder"], LoaderOptions(max_file_bytes=2**20))
    messages = {os.path.basename(p.path): p.message for p in report.problems}
    assert "not valid UTF-8" in messages["latin1.txt"]
    assert messages["empty.txt"] == "empty file" and messages["blank.md"] == "empty file"
    assert "binary" in messages["image.png"]
    assert "too large" in messages["huge.txt"]
    assert "invalid JSON" in messages["broken.json"]
    assert "PDF" in messages["broken.pdf"]
    assert "no 'text' field" in messages["nofield.json"]
    assert messages["missing-folder"] == "not found"
    if os.geteuid() != 0:  # root reads anything
        assert "permission denied" in messages["secret.txt"]
    jsonl_problems = [p.message for p in report.problems if p.path.endswith("rows.jsonl")]
    assert any("line 2" in m for m in jsonl_problems) and any("line 3" in m for m in jsonl_problems)
    paths = {os.path.basename(p) for p in _paths(collection)}
    assert {"good.txt", "rows.jsonl"} <= paths
    assert "latin1.txt" not in paths and "huge.txt" not in paths
    assert collection.check().ok
    collection.close()
    store.close()


def _paths(collection) -> set[str]:
    from sqlalchemy import select

    from indexer.store import DocumentRow

    with collection.store.sessions() as session:
        return set(session.scalars(select(DocumentRow.path).where(DocumentRow.collection_id == collection.row.id)))


def _texts(collection) -> list[str]:
    from sqlalchemy import select

    from indexer.store import ChunkRow, DocumentRow

    with collection.store.sessions() as session:
        return list(session.scalars(select(ChunkRow.text).join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
                                    .where(DocumentRow.collection_id == collection.row.id)))


def test_formats_give_text_titles_and_metadata(tmp_path):
    (tmp_path / "a.html").write_text("<html><head><title>Page</title><style>p{}</style></head>"
                                     "<body><script>var x;</script><p>Visible words</p></body></html>")
    (tmp_path / "b.md").write_text("# Heading\n\nBody text.")
    (tmp_path / "c.csv").write_text("title,body,year\nOne,first row,2020\nTwo,second row,2024\n")
    (tmp_path / "d.json").write_text(json.dumps([{"text": "alpha", "tag": "x"}, {"text": "beta", "tag": "y"}]))
    options = LoaderOptions(csv_columns=["body"])
    html = read_file(tmp_path / "a.html", options).records[0]
    assert html.title == "Page" and "Visible words" in html.text and "var x" not in html.text and "p{}" not in html.text
    assert read_file(tmp_path / "b.md", options).records[0].title == "Heading"
    rows = read_file(tmp_path / "c.csv", options).records
    assert [r.text for r in rows] == ["first row", "second row"]
    assert rows[1].metadata["year"] == "2024" and rows[1].title == "Two"
    items = read_file(tmp_path / "d.json", options).records
    assert [r.metadata["tag"] for r in items] == ["x", "y"]


def test_pdf_pages_become_records(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(72, 72)
    with open(tmp_path / "blank.pdf", "wb") as f:
        writer.write(f)
    from indexer.loaders import FileProblem

    with pytest.raises(FileProblem, match="no text"):
        read_file(tmp_path / "blank.pdf", LoaderOptions())


def test_chunks_overlap_and_slice_the_source(tiny):
    text = " ".join(SENTENCES * 3)
    chunks = chunk_text(text, tiny.tokenizer, max_tokens=20, overlap=5)
    assert len(chunks) > 3
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.tokens <= 20
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:]))  # neighbours overlap
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    with pytest.raises(ValueError):
        chunk_text(text, tiny.tokenizer, max_tokens=20, overlap=15)


def test_walk_skips_hidden_and_sorts(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("x")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    files, problems = walk([tmp_path])
    assert [f.name for f in files] == ["a.txt", "b.txt"] and not problems


# ----- indexing and search ----------------------------------------------------------------------
def test_exact_text_query_returns_that_document_first(folder, model):
    # A random-weight model only guarantees identity, not meaning: with the same instruction on both
    # sides a document's own text embeds to its own vector, which must come back first.
    store, collection = open_collection(model, instruction="same", document_instruction="same")
    collection.index([folder])
    for i, text in enumerate(SENTENCES[:6]):
        hits = collection.search(text, k=3, mode="semantic")
        assert hits[0].path.endswith(f"doc{i}.txt")
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert hits[0].text == text
        for mode in ("hybrid", "keyword"):  # the default, and words alone: whatever the model
            assert collection.search(text, k=3, mode=mode)[0].path.endswith(f"doc{i}.txt"), mode
    collection.close()


def test_reindex_embeds_only_changes(folder, model):
    store, collection = open_collection(model)
    first = collection.index([folder])
    assert first.added == 6 and model.documents == first.chunks_embedded > 0
    model.documents = 0
    again = collection.index([folder])
    assert model.documents == 0 and again.unchanged == 6 and again.chunks_embedded == 0
    os.utime(folder / "doc0.txt", (1, 1))  # touched, same content: still nothing to embed
    assert collection.index([folder]).chunks_embedded == 0 and model.documents == 0

    (folder / "doc0.txt").write_text("Completely new words about cooking pasta.")
    (folder / "sub" / "doc1.txt").unlink()
    (folder / "new.txt").write_text(SENTENCES[7])
    changed = collection.index([folder])
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 1, 1, 4)
    expected = sum(len(chunk_text(t, model.tokenizer, 16, 4)) for t in ["Completely new words about cooking pasta.",
                                                                         SENTENCES[7]])
    assert model.documents == changed.chunks_embedded == expected
    paths = {os.path.basename(p) for p in _paths(collection)}
    assert "doc1.txt" not in paths and {"doc0.txt", "new.txt"} <= paths
    hits = collection.search("anything", k=50, group=False)
    assert not any(h.path.endswith("doc1.txt") for h in hits)
    assert any("cooking" in h.text for h in hits) and not any("cat sat" in h.text for h in hits)
    report = collection.check()
    assert report.ok and report.chunks == report.vectors
    collection.close()


def test_filters_filter(tmp_path, model):
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"text": s, "year": 2018 + i, "lang": "en" if i % 2 else "fr"})
                                                   for i, s in enumerate(SENTENCES)))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.md").write_text("# Note\nA dog runs in the park.")
    store, collection = open_collection(model)
    collection.index([tmp_path])
    years = lambda hits: sorted(h.metadata["year"] for h in hits)  # noqa: E731
    assert years(collection.search("q", k=20, filters=["year>=2022"])) == [2022, 2023, 2024, 2025]
    assert years(collection.search("q", k=20, filters=["year<2020"])) == [2018, 2019]
    assert years(collection.search("q", k=20, filters=["year=2021"])) == [2021]
    assert years(collection.search("q", k=20, filters=["lang=fr", "year>2019"])) == [2020, 2022, 2024]
    assert all(h.metadata["lang"] != "fr" for h in collection.search("q", k=20, filters=["lang!=fr"]))
    only_md = collection.search("q", k=20, filters=["ext=.md"])
    assert [os.path.basename(h.path) for h in only_md] == ["n.md"]
    under = collection.search("q", k=20, path_prefix=str(tmp_path / "notes"))
    assert [os.path.basename(h.path) for h in under] == ["n.md"]
    assert collection.search("q", k=20, filters=["year>3000"]) == []
    assert len(collection.search("q", k=3, filters=["year>=2018"])) == 3
    with pytest.raises(ValueError, match="cannot read filter"):
        collection.search("q", filters=["year"])
    collection.close()


def test_delete_document_and_collection(folder, model):
    store, collection = open_collection(model)
    collection.index([folder])
    assert collection.delete([str(folder / "doc0.txt")]) == 1
    assert collection.delete([str(folder / "sub")]) == 3  # a folder deletes everything under it
    assert {os.path.basename(p) for p in _paths(collection)} == {"doc2.txt", "doc4.txt"}
    assert collection.check().ok
    file = collection.path
    collection.close()
    assert store.delete_documents("c", [str(folder / "doc2.txt")]) == 1
    assert all(r.ok for r in store.check("c"))
    store.drop("c")
    assert store.names() == [] and not file.exists()
    with pytest.raises(IndexerError, match="no collection named 'c'"):
        store.open("c", model)


@pytest.mark.timeout(300)  # a FIFO read would hang: fail instead
def test_links_out_of_the_folder_loops_fifos_and_devices_are_skipped_never_read(tmp_path, model):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.txt").write_text("a cat sat on the mat\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("a secret outside the folder\n")
    (root / "escape.txt").symlink_to(outside)
    (root / "zero.txt").symlink_to("/dev/zero")  # used to grow memory without bound
    (root / "loop-a.txt").symlink_to(root / "loop-b.txt")
    (root / "loop-b.txt").symlink_to(root / "loop-a.txt")
    os.mkfifo(root / "pipe.txt")  # used to hang the run, holding the write lock
    (root / "inside.txt").symlink_to(root / "good.txt")  # a link inside the folder is fine
    files, problems = walk([root])
    assert files == [(root / "good.txt").resolve()]
    reasons = {os.path.basename(p.path): p.message for p in problems}
    assert "outside the folder" in reasons["escape.txt"] and "symbolic link loop" in reasons["loop-a.txt"]
    assert "not a regular file" in reasons["pipe.txt"] and "outside the folder" in reasons["zero.txt"]
    store, collection = open_collection(model)
    report = collection.index([root])
    assert _paths(collection) == {str((root / "good.txt").resolve())}
    assert not any("secret" in chunk for chunk in _texts(collection))
    collection.close()
    with pytest.raises(Exception):
        read_file(root / "pipe.txt", LoaderOptions())
    assert report.files == 1


def test_index_of_a_missing_path_or_a_device_fails_and_creates_nothing(tmp_path, capsys):
    from app.cli import main

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (str(tmp_path / "no-such-folder"), "/dev/null", str(fifo)):
        assert main(["index", path, "--collection", "c", "--model", "tiny", "--device", "cpu"]) == 2
        assert "nothing was indexed" in capsys.readouterr().err
    assert Store().names() == []


def test_an_empty_delete_path_deletes_nothing(folder, model, monkeypatch):
    store, collection = open_collection(model)
    collection.index([folder])
    monkeypatch.chdir(folder)  # "" resolved to the current directory, and deleted everything under it
    for delete in (collection.delete, lambda paths: store.delete_documents("c", paths)):
        for paths in ([""], ["  "], [str(folder / "doc0.txt"), ""]):
            with pytest.raises(ValueError, match="empty path"):
                delete(paths)
    assert len(_paths(collection)) == 6 and collection.check().ok
    collection.close()


@pytest.mark.parametrize("params", [{"M": 0}, {"M": -4}, {"nlist": -3}, {"nprobe": 0}, {"efSearch": 2.5},
                                    {"M": True}])
def test_bad_index_parameters_are_refused_before_anything_is_stored(model, params):
    store = Store()
    with pytest.raises(ValueError, match="must be a whole number"):
        store.open("c", model, create=True, index_type="hnsw", index_params=params, progress=False)
    assert store.names() == []  # nothing persisted: a later run is not poisoned


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../x", "bad\nname", "x" * 101, ".hidden", "\x1b[31mred"])
def test_unsafe_collection_names_are_refused_before_anything_is_created(model, name):
    from app.ui.state import AppState

    with pytest.raises(ValueError, match="collection name"):
        Store().open(name, model, create=True, progress=False)
    assert Store().names() == []
    with pytest.raises(ValueError, match="collection name"):
        AppState.uploads_dir(None, name)  # an upload into '..' used to write into the home folder


def test_the_store_is_private_to_its_user(folder, model, tmp_path, monkeypatch):
    import stat

    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path / "fresh-home"))
    store, collection = open_collection(model)
    collection.index([folder])
    collection.close()
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "fresh-home").stat().st_mode) == 0o700
    for file in store.directory.iterdir():
        if file.suffix in (".sqlite", ".faiss"):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_an_index_reopens_for_writing_with_its_stored_bookkeeping(folder, model):
    store, collection = open_collection(model, index_type="hnsw", index_params={"M": 8})
    collection.index([folder])
    collection.close()  # saving stores {"M": 8, "built": "hnsw"} in the index row
    again = store.open("c", model, create=True, progress=False)
    assert again.index([folder]).files == 6
    again.close()


def test_new_instruction_reuses_stored_chunks_and_models_never_mix(folder, tmp_path, model, tiny):
    store, collection = open_collection(model)
    collection.index([folder])
    chunks = collection.check().chunks
    collection.close()
    moved = tmp_path / "gone"
    folder.rename(moved)  # the files are not needed: the stored chunks are re-used
    model.documents = 0
    second = store.open("c", model, "Given a question, find the answer.", writable=True, progress=False)
    assert model.documents == 0 and second.check().ok  # same model and document side: vectors copied
    assert second.path != collection.path
    assert len(second.search("dog", k=2)) == 2
    second.close()
    model.documents = 0
    third = store.open("c", model, "Find code.", document_instruction="Represent code.", writable=True,
                       progress=False)
    assert model.documents == chunks and third.check().ok  # another document instruction: embedded again
    third.close()

    from embedder import PromptEmbedder

    other = PromptEmbedder.from_pretrained("tiny-qwen2", device="cpu")  # another model, another fingerprint
    assert other.fingerprint != tiny.fingerprint
    with pytest.raises(IndexerError, match="no index for this model"):
        store.open("c", other, writable=False)
    fourth = store.open("c", other, writable=True, progress=False)
    assert fourth.index_row.id not in (collection.index_row.id, second.index_row.id, third.index_row.id)
    assert fourth.vectors.dimension == other.dimension and fourth.vectors.ntotal == chunks
    fourth.close()
    assert len(store.indexes("c")) == 4


def test_upsert_replaces_by_key(model):
    store, collection = open_collection(model)
    report = collection.upsert([{"id": "a", "text": SENTENCES[0], "metadata": {"k": 1}},
                                {"id": "b", "text": SENTENCES[1]}])
    assert report.added == 2
    model.documents = 0
    report = collection.upsert([{"id": "a", "text": SENTENCES[2], "metadata": {"k": 2}}, {"id": "b", "text": SENTENCES[1]}])
    assert (report.updated, report.unchanged, model.documents) == (1, 1, 1)
    assert [h.metadata["k"] for h in collection.search("q", filters=["k=2"])] == [2]
    with pytest.raises(ValueError):
        collection.upsert([{"text": "no id"}])
    collection.close()


def test_read_only_open_never_writes_and_sees_new_saves(folder, model):
    store, writer = open_collection(model)
    writer.index([folder])
    reader = store.open("c", model, writable=False)
    before = len(reader.search("x", k=50))
    (folder / "late.txt").write_text("A late arrival.")
    writer.index([folder])
    assert len(reader.search("x", k=50)) == before + 1  # the replaced file is picked up
    with pytest.raises(IndexerError, match="read-only"):
        reader.index([folder])
    writer.close()


# ----- FAISS ------------------------------------------------------------------------------------
def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_vector_index_kinds_search_remove_and_save(tmp_path, kind):
    x, ids = _unit(2000, 16), np.arange(1000, 3000, dtype=np.int64)
    index = VectorIndex.build(ids, x, kind, {"nprobe": 64}, nlist=32 if kind == "ivf" else None)
    assert index.kind == kind and index.ntotal == 2000
    _, found = index.search(x[:5], 1)
    assert list(found[:, 0]) == list(ids[:5])
    index.remove(ids[:5])
    assert index.ntotal == 1995 and not np.isin(ids[:5], index.ids()).any()
    _, found = index.search(x[:5], 3)
    assert not np.isin(found, ids[:5]).any()
    _, found = index.search(x[10:11], 5, allowed=ids[100:103])
    assert set(found[0][found[0] >= 0]) == set(ids[100:103])
    index.save(tmp_path / "i.faiss")
    loaded = VectorIndex.load(tmp_path / "i.faiss")
    assert loaded.kind == kind and sorted(loaded.ids()) == sorted(ids[5:])
    got_ids, got_vectors = loaded.vectors()
    order = np.argsort(got_ids)
    np.testing.assert_allclose(got_vectors[order], x[5:], atol=1e-6)
    assert not list(tmp_path.glob("*.tmp-*"))


def test_auto_kind_follows_size():
    assert desired_kind("auto", 1000, {}) == ("flat", None)
    kind, nlist = desired_kind("auto", 200_000, {})
    assert kind == "ivf" and 1024 <= nlist <= 2048
    assert desired_kind("ivf", 500, {}) == ("flat", None)  # too few to train: exact until it can
    assert desired_kind("hnsw", 10, {}) == ("hnsw", None)
    with pytest.raises(ValueError):
        desired_kind("lsh", 10, {})


def test_auto_index_becomes_ivf_when_it_grows(model, monkeypatch):
    import indexer.vectors as vectors

    monkeypatch.setattr(vectors, "EXACT_THRESHOLD", 100)
    store, collection = open_collection(model, index_params={"nlist": 16})
    collection.upsert([{"id": str(i), "text": f"{SENTENCES[i % 8]} number {i}"} for i in range(700)])
    chunks = collection.check().chunks
    assert chunks >= 700 and collection.vectors.kind == "ivf" and collection.vectors.ntotal == chunks
    assert store.stats("c")[0]["indexes"][0]["built"].startswith("ivf")
    collection.close()
    reopened = store.open("c", model, writable=False)
    assert reopened.vectors.kind == "ivf" and reopened.check().ok
    assert len(reopened.search("q", k=5)) == 5


def test_ivfpq_keeps_m_bytes_per_vector_and_still_finds_each_vector(tmp_path):
    x, ids = _unit(12_000, 64), np.arange(12_000, dtype=np.int64)
    index = VectorIndex.build(ids, x, "ivfpq", {"nprobe": 16, "pq_m": 16}, nlist=64)
    assert index.kind == "ivfpq" and index.index.code_size == 16  # IVF-Flat: 256 bytes at d = 64
    _, found = index.search(x[:100], 10)
    assert np.mean([ids[i] in found[i] for i in range(100)]) >= 0.9  # lossy, but each finds itself
    index.remove(ids[:5])
    assert index.ntotal == 11_995 and not np.isin(ids[:5], index.ids()).any()
    _, found = index.search(x[10:11], 5, allowed=ids[100:103])  # filtered: exact over the decoded vectors
    assert set(found[0][found[0] >= 0]) == set(ids[100:103])
    index.save(tmp_path / "i.faiss")
    loaded = VectorIndex.load(tmp_path / "i.faiss")
    assert loaded.kind == "ivfpq" and loaded.nlist == 64
    got_ids, got_vectors = loaded.vectors()  # decoded: close to what was stored, not equal
    cosines = (got_vectors * x[got_ids]).sum(1) / np.linalg.norm(got_vectors, axis=1)
    assert got_vectors.shape == (11_995, 64) and cosines.mean() > 0.8 and not np.allclose(got_vectors, x[got_ids])


def test_auto_moves_to_ivfpq_past_the_memory_budget(monkeypatch):
    monkeypatch.setenv("PROMPTEMBEDDER_INDEX_MEMORY_GB", "1")  # 1 GB: IVF-Flat at d = 576 holds ~430k vectors
    assert desired_kind("auto", 200_000, {}, 576)[0] == "ivf"
    kind, nlist = desired_kind("auto", 1_000_000, {}, 576)
    assert kind == "ivfpq" and nlist == 4096
    assert desired_kind("ivfpq", 9_000, {"nlist": 16}, 64) == ("ivf", 16)  # too few to train the codebooks
    with pytest.raises(ValueError, match="does not divide"):
        VectorIndex.build(np.arange(300), _unit(300, 24), "ivfpq", {"pq_m": 7}, nlist=4)


def test_auto_index_becomes_ivfpq_when_it_outgrows_memory(model, monkeypatch):
    import indexer.vectors as vectors

    monkeypatch.setattr(vectors, "EXACT_THRESHOLD", 100)
    monkeypatch.setattr(vectors, "PQ_MIN_TRAIN", 300)  # FAISS warns below 9,984 training points, and trains
    monkeypatch.setenv("PROMPTEMBEDDER_INDEX_MEMORY_GB", "1e-6")
    store, collection = open_collection(model, index_params={"nlist": 16})
    collection.upsert([{"id": str(i), "text": f"{SENTENCES[i % 8]} number {i}"} for i in range(700)])
    assert collection.vectors.kind == "ivfpq" and collection.vectors.ntotal == collection.check().chunks
    assert store.stats("c")[0]["indexes"][0]["built"].startswith("ivfpq nlist=16 m=")
    collection.close()
    reopened = store.open("c", model, writable=False)
    assert reopened.vectors.kind == "ivfpq" and reopened.check().ok
    assert len(reopened.search("q", k=5)) == 5


# ----- consistency ------------------------------------------------------------------------------
def test_reconcile_removes_stray_vectors_and_embeds_missing_rows(folder, model):
    store, collection = open_collection(model)
    collection.index([folder])
    ids = collection.vectors.ids()
    collection.vectors.remove(ids[:2])  # rows without vectors
    collection.vectors.add(np.array([999_999], dtype=np.int64), _unit(1, model.dimension))  # a vector without row
    collection.save()
    report = store.check("c")[0]
    assert len(report.missing) == 2 and list(report.orphans) == [999_999] and not report.ok
    collection.close()
    model.documents = 0
    reopened = store.open("c", model, writable=True, progress=False)
    assert reopened.open_report.repaired and model.documents == 2
    assert reopened.check().ok and store.check("c")[0].ok
    reopened.close()


def test_corrupt_index_file_is_rebuilt_on_writable_open(folder, model):
    store, collection = open_collection(model)
    collection.index([folder])
    path, chunks = collection.path, collection.check().chunks
    collection.close()
    path.write_bytes(b"garbage")
    with pytest.raises(IndexerError, match="cannot read"):
        store.open("c", model, writable=False)
    repaired = store.open("c", model, writable=True, progress=False)
    assert repaired.open_report.file_problem and repaired.check().ok and repaired.vectors.ntotal == chunks
    repaired.close()


# ----- CLI --------------------------------------------------------------------------------------
def test_cli_index_search_stats_delete(folder, capsys):
    from app.cli import main

    assert main(["index", str(folder), "-c", "notes", "--model", "tiny", "--chunk-tokens", "16"]) == 0
    assert "6 added" in capsys.readouterr().out
    assert main(["search", "A dog runs in the park.", "-c", "notes", "-k", "3", "--json"]) == 0  # model remembered
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3 and {"path", "text", "score", "metadata"} <= set(out["hits"][0])
    assert main(["search", "x", "-c", "notes", "--filter", "name=doc2.txt", "--json"]) == 0
    assert [os.path.basename(h["path"]) for h in json.loads(capsys.readouterr().out)["hits"]] == ["doc2.txt"]
    assert main(["collections"]) == 0 and "notes: 6 documents" in capsys.readouterr().out
    assert main(["stats", "-c", "notes", "--check"]) == 0 and "consistent" in capsys.readouterr().out
    assert main(["delete", "-c", "notes", str(folder / "doc0.txt")]) == 0
    assert main(["delete", "-c", "notes"]) == 0
    assert main(["search", "x", "-c", "notes"]) == 2
    assert "no collection named 'notes'" in capsys.readouterr().err


def test_any_sqlalchemy_url_and_a_separate_faiss_directory(tmp_path, model):
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'meta.db'}"
    (tmp_path / "elsewhere").mkdir()
    with Store(tmp_path / "faiss", url=url) as store:
        with store.open("c", model, create=True, chunk_tokens=16, chunk_overlap=4, progress=False) as collection:
            collection.upsert([{"id": "a", "text": SENTENCES[0]}])
        assert (tmp_path / "elsewhere" / "meta.db").exists() and list((tmp_path / "faiss").glob("index-*.faiss"))
        assert store.stats("c")[0]["documents"] == 1


def test_a_corrupt_database_is_a_message_and_stays_untouched(tmp_path, capsys):
    from app.cli import main

    store = tmp_path / "store"
    store.mkdir()
    junk = bytes(range(256)) * 20
    (store / "collections.sqlite").write_bytes(junk)
    assert main(["collections", "--store", str(store)]) == 2
    assert "file is not a database" in capsys.readouterr().err
    assert (store / "collections.sqlite").read_bytes() == junk


def test_stores_created_at_once_from_several_threads_all_open(tmp_path):
    import threading

    errors = []

    def open_store():
        try:
            Store(tmp_path / "fresh").close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_reindexing_while_a_subfolder_is_unreadable_keeps_its_documents(folder, model, monkeypatch):
    import indexer.loaders as loaders

    store, collection = open_collection(model)
    collection.index([folder])
    real_walk = os.walk

    def walk_failing_in_sub(top, onerror=None, **kwargs):  # as os.walk does for a folder it cannot list
        for root, dirs, names in real_walk(top, **kwargs):
            if os.path.basename(root) == "sub":
                onerror(PermissionError(13, "Permission denied", root))
                dirs[:], names[:] = [], []
                continue
            yield root, dirs, names

    monkeypatch.setattr(loaders.os, "walk", walk_failing_in_sub)
    report = collection.index([folder])
    assert report.removed == 0 and len(_paths(collection)) == 6  # doc1, doc3, doc5 under sub/ are kept
    assert any("kept as they were" in p.message for p in report.problems)
    (folder / "doc0.txt").unlink()  # a file really gone from a readable folder still goes
    assert collection.index([folder]).removed == 1
    collection.close()


@pytest.mark.parametrize("segment", [40, 300, 5000])
def test_long_texts_are_chunked_a_segment_at_a_time_into_the_same_windows(tiny, monkeypatch, segment):
    import indexer.chunking as chunking

    text = " ".join(f"{SENTENCES[i % 8]} Item {i} of the list." for i in range(120))
    small, large = (chunking.chunk_text(text, tiny.tokenizer, n, n // 8) for n in (16, 200))
    monkeypatch.setattr(chunking, "SEGMENT_CHARS", segment)  # 40: fewer than two 200-token windows per segment
    assert chunking.chunk_text(text, tiny.tokenizer, 16, 2) == small
    assert chunking.chunk_text(text, tiny.tokenizer, 200, 25) == large


def test_control_characters_in_file_names_never_reach_the_terminal(tmp_path, capsys):
    from app.cli import main

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x\x1b[31mred.txt").write_text("hello there")
    (tmp_path / "d" / "l\x1b[1mink.txt").symlink_to("/etc/hostname")
    assert main(["index", str(tmp_path / "d"), "-c", "a", "--model", "tiny"]) == 0
    assert main(["search", "hello", "-c", "a", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "x?[31mred.txt" in out and "l?[1mink.txt" in out


def test_an_emptied_folder_keeps_its_documents_until_deleted_explicitly(folder, model):
    import shutil

    store, collection = open_collection(model)
    collection.index([folder])
    mount = folder.parent / "moved-away"
    shutil.move(str(folder), mount)  # as an unmounted drive leaves its mount point
    folder.mkdir()
    report = collection.index([folder])
    assert report.removed == 0 and len(_paths(collection)) == 6
    assert any("is empty" in p.message and "promptembedder delete" in p.message for p in report.problems)
    assert collection.delete([str(folder)]) == 6  # what the user does when it was meant
    collection.close()
