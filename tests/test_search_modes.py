"""Hybrid search: the keyword index (FTS5) beside the rows, the three modes, grouping, pagination,
snippets, filters that name what is wrong, and the document preview."""
from __future__ import annotations

import json
import sqlite3

import pytest

from indexer import Store, IndexerError
from indexer.fusion import reciprocal_rank_fusion
from indexer.snippets import highlight, matches, snippet

LONG = " ".join(f"Paragraph {i} talks about parsing configuration files and their options." for i in range(12))
DOCS = {
    "json.txt": "Read and write JSON files with the json module: loads, dumps and the decoder.",
    "cats.txt": "The cat sat on the mat while the dog ran in the garden.",
    "zebra.txt": "The quagga is an extinct subspecies of the plains zebra, code QX-4471.",
    "long.txt": LONG,
}


@pytest.fixture(scope="module")
def tiny():
    from embedder import PromptEmbedder

    return PromptEmbedder.from_pretrained("tiny", device="cpu")


@pytest.fixture
def indexed(tmp_path, tiny):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text + "\n")
    (root / "rows.jsonl").write_text("\n".join(json.dumps({"text": f"row {i} about pelicans", "lang": lang})
                                               for i, lang in enumerate(["en", "fr", "en"])))
    store = Store()
    collection = store.open("c", tiny, create=True, chunk_tokens=16, chunk_overlap=4, progress=False)
    collection.index([root])
    yield store, collection, root
    collection.close()
    store.close()


def _names(hits) -> list[str]:
    return [hit.relative_path for hit in hits]


def _fts_rows(store) -> int:
    with sqlite3.connect(store.directory / "collections.sqlite") as connection:
        return connection.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0]


def test_each_mode_ranks_and_hybrid_is_the_default(indexed):
    store, collection, root = indexed
    assert collection.default_mode == "hybrid"
    # a rare word and a code: keyword search finds the one document that has them, whatever the model
    for mode in ("keyword", "hybrid"):
        assert _names(collection.search("quagga QX-4471", k=3, mode=mode))[0] == "zebra.txt"
    assert _names(collection.search("quagga", k=10, mode="keyword")) == ["zebra.txt"]  # only documents with the word
    semantic = collection.search("quagga", k=10, mode="semantic")
    assert len(semantic) == 7  # every document and JSON row, ranked by cosine
    assert all(-1.0 <= hit.score <= 1.0 for hit in semantic)
    hybrid = collection.search("quagga", k=10)
    assert {h.relative_path for h in hybrid} == {h.relative_path for h in semantic}
    # fused per chunk, then grouped: the zebra chunk is first by keyword, and somewhere by cosine
    by_cosine = [h.chunk_id for h in collection.search("quagga", k=1000, mode="semantic", group=False)]
    assert hybrid[0].relative_path == "zebra.txt"
    assert hybrid[0].score == pytest.approx(0.5 / 61 + 0.5 / (60 + by_cosine.index(hybrid[0].chunk_id) + 1))
    assert collection.search("the of and", mode="keyword") == []  # stop words alone match nothing
    assert collection.search('"json" OR NEAR( *', mode="keyword")[0].relative_path == "json.txt"  # no FTS syntax
    with pytest.raises(ValueError, match="search mode"):
        collection.search("x", mode="fuzzy")
    with pytest.raises(ValueError, match="keyword weight"):
        collection.search("x", keyword_weight=1.5)


def test_keyword_weight_moves_hybrid_between_the_two_rankings(indexed):
    store, collection, root = indexed
    keyword_only = collection.search("parsing configuration", k=7, keyword_weight=1.0)
    assert _names(keyword_only)[0] == _names(collection.search("parsing configuration", k=7, mode="keyword"))[0]
    semantic_only = collection.search("parsing configuration", k=7, keyword_weight=0.0)
    assert _names(semantic_only) == _names(collection.search("parsing configuration", k=7, mode="semantic"))


def test_rrf_reads_ranks_only():
    fused = reciprocal_rank_fusion(["a", "b", "c"], ["c", "d"], keyword_weight=0.5)
    scores = dict(fused)
    assert scores["c"] == pytest.approx(0.5 / 63 + 0.5 / 61) and fused[0][0] == "c"
    assert scores["d"] == pytest.approx(0.5 / 62) and set(scores) == {"a", "b", "c", "d"}


def test_hits_are_grouped_by_document_and_paginated(indexed):
    store, collection, root = indexed
    grouped = collection.search("parsing configuration files", k=10, mode="keyword")
    assert _names(grouped).count("long.txt") == 1
    long_hit = grouped[_names(grouped).index("long.txt")]
    assert long_hit.chunks_matched > 5  # its other matching chunks are counted, not listed
    chunks = collection.search("parsing configuration files", k=10, mode="keyword", group=False)
    assert _names(chunks).count("long.txt") == 10
    # JSON rows are items of their own; pages never overlap and add up to the whole list
    everything = collection.search("anything", k=7, mode="semantic")
    assert sorted(_names(everything)).count("rows.jsonl") == 3 and len(set(h.chunk_id for h in everything)) == 7
    pages = [collection.search("anything", k=3, offset=offset, mode="semantic") for offset in (0, 3, 6)]
    assert [h.chunk_id for page in pages for h in page] == [h.chunk_id for h in everything]
    assert collection.search("anything", k=3, offset=9, mode="semantic") == []


def test_snippets_mark_terms_not_stop_words_or_prefixes():
    text = "The files were filed under filesystem notes; a file is read when reading the index of files."
    marked = [text[a:b] for a, b in matches(text, "the file reading")]
    assert marked == ["files", "filed", "file", "read", "reading", "files"]  # not 'The', 'the', 'filesystem'
    window, spans = snippet("x " * 400 + "the zebra code " + "y " * 400, "zebra", width=100)
    assert len(window) <= 104 and window.startswith("…") and window.endswith("…")
    assert [window[a:b] for a, b in spans] == ["zebra"]
    assert highlight("a zebra b", [(2, 7)], "<mark>", "</mark>") == "a <mark>zebra</mark> b"


def test_hits_carry_snippet_relative_path_and_title(indexed):
    store, collection, root = indexed
    hit = collection.search("json decoder", k=1, mode="keyword")[0]
    assert hit.relative_path == "json.txt" and hit.path == str(root / "json.txt")
    assert collection.root() == str(root) + "/"
    assert hit.title == "json" and [hit.snippet[a:b] for a, b in hit.highlights][-1] == "decoder"


def test_filters_apply_to_both_sides_and_bad_ones_say_why(indexed):
    store, collection, root = indexed
    for mode in ("keyword", "semantic", "hybrid"):
        hits = collection.search("pelicans", k=10, mode=mode, filters=["lang=en"])
        assert [h.metadata["lang"] for h in hits] == ["en", "en"], mode
    keys = collection.metadata_keys()
    assert keys["lang"] == ["en", "fr"] and {"ext", "name", "modified"} <= set(keys)
    with pytest.raises(IndexerError, match=r"no document .* metadata key 'langue'; keys: .*lang"):
        collection.search("x", filters=["langue=en"])
    with pytest.raises(ValueError, match="cannot read filter"):
        collection.search("x", filters=["lang"])


def test_deletes_and_rewrites_keep_the_keyword_index_in_step(indexed):
    store, collection, root = indexed
    assert _fts_rows(store) == collection.check().chunks
    collection.delete([str(root / "zebra.txt")])
    assert collection.search("quagga", mode="keyword") == []
    (root / "json.txt").write_text("Now about TOML only.")
    collection.index([root])
    assert collection.search("decoder", mode="keyword") == [] and collection.search("toml", mode="keyword")
    assert _fts_rows(store) == collection.check().chunks and all(r.ok for r in store.check("c"))
    collection.close()
    store.drop("c")
    assert _fts_rows(store) == 0


def test_document_preview_rebuilds_the_text_without_overlaps(indexed):
    store, collection, root = indexed
    assert collection.document_text(str(root / "long.txt")) == "long\n\n" + LONG
    with pytest.raises(IndexerError, match="no document"):
        collection.document_text(str(root / "missing.txt"))


def test_an_older_store_gains_the_keyword_index_and_a_damaged_one_is_rebuilt(indexed, tiny):
    store, collection, root = indexed
    collection.close()
    store.close()
    database = store.directory / "collections.sqlite"
    with sqlite3.connect(database) as connection:  # as a store from before the keyword index
        for trigger in ("insert", "delete", "update"):
            connection.execute(f"DROP TRIGGER chunks_fts_{trigger}")
        connection.execute("DROP TABLE chunks_fts")
    again = Store()
    reader = again.open("c", tiny, writable=False)
    assert _names(reader.search("quagga", mode="keyword")) == ["zebra.txt"]
    with sqlite3.connect(database) as connection:  # damage: the index forgets every chunk
        connection.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('delete-all')")
    problem = again.check("c")[0].keyword_problem
    assert problem and "keyword index" in problem
    with again.open("c", tiny, writable=True) as writer:  # a writable open repairs it
        assert writer.open_report.repaired
    assert all(r.ok for r in again.check("c"))
    assert _names(reader.search("quagga", mode="keyword")) == ["zebra.txt"]
    reader.close()
    again.close()


def test_cli_search_modes_pages_and_filter_errors(indexed, capsys):
    from app.cli import main

    store, collection, root = indexed
    collection.close()
    assert main(["search", "quagga zebra", "-c", "c", "--model", "tiny", "--mode", "keyword", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "keyword" and "BM25" in out["score"]
    assert [h["relative_path"] for h in out["hits"]] == ["zebra.txt"] and out["hits"][0]["highlights"]
    assert main(["search", "anything", "-c", "c", "--model", "tiny", "-k", "2", "--page", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("hybrid search in ") and "\n3. " in printed and "\n1. " not in printed
    assert main(["search", "x", "-c", "c", "--model", "tiny", "--filter", "colour=red"]) == 2
    assert "metadata key 'colour'" in capsys.readouterr().err


def test_several_document_instructions_from_one_text_pass(tmp_path, tiny, capsys):
    import numpy as np

    from app.cli import main

    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text + "\n")
    pairs = [("Find the answer", "Represent the passage"), ("Find the topic", "Summarise the passage")]
    args = ["index", str(root), "-c", "two", "--model", "tiny", "--chunk-tokens", "16"]
    for query, document in pairs:
        args += ["--instruction", query, "--document-instruction", document]
    assert main(args) == 0
    store = Store()
    assert sorted((ix.instruction, ix.document_instruction) for ix in store.indexes("two")) == sorted(pairs)
    assert all(r.ok and r.vectors == r.chunks > 0 for r in store.check("two"))
    for query, document in pairs:  # each index holds what indexing under its own instruction alone gives
        with store.open("two", tiny, query, writable=False) as collection:
            ids = collection.vectors.ids()
            texts = collection._hits([(int(i), 0.0) for i in ids], group=False)
            alone = tiny.encode_document([hit.text for hit in texts], instruction=document)
            stored = collection.vectors.index.reconstruct_batch(np.array([hit.chunk_id for hit in texts]))
            assert np.abs(stored - alone).max() < 1e-5
    with store.open("two", tiny, pairs[0][0], also=pairs[1:], create=True) as collection:
        collection.delete([str(root / "zebra.txt")])  # from both indexes
    assert all(r.ok for r in store.check("two"))
    assert main(["index", str(root), "-c", "two", "--model", "tiny", "--instruction", "a", "--instruction", "b",
                 "--document-instruction", "x"]) == 2
    assert "one of each per index" in capsys.readouterr().err


def test_keyword_search_from_the_cli_loads_no_model(indexed, capsys, monkeypatch):
    from app.cli import main

    store, collection, root = indexed
    collection.close()
    monkeypatch.setattr("app.commands.index.load_model", lambda args: (_ for _ in ()).throw(AssertionError("loaded")))
    assert main(["search", "quagga", "-c", "c", "--mode", "keyword", "--json"]) == 0
    assert [h["relative_path"] for h in json.loads(capsys.readouterr().out)["hits"]] == ["zebra.txt"]
