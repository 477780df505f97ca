"""The UI's wiring without a browser: jobs, roots, the demo documents, indexing and swap jobs, metrics, CLI."""
from __future__ import annotations

import json
import math
import os
import time

import pytest

from app.services.progress import Cancelled
from app.ui.jobs import JobContext, Jobs
from app.ui.state import AppState, ModelChoice


@pytest.fixture
def state(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return AppState(roots=[root], model_choice=ModelChoice("tiny"))


def test_jobs_persist_status_log_points_and_survive_a_new_server(tmp_path):
    jobs = Jobs(tmp_path / "jobs")

    def work(ctx):
        ctx.log("hello")
        ctx.point(step=1, loss=2.0)
        ctx.progress(1, 2, "half way")
        return {"summary": "all done", "answer": 42}

    job = jobs.start("index", "test job", work)
    status = jobs.wait(job, 10)
    assert status["state"] == "done" and status["result"]["answer"] == 42 and status["message"] == "all done"
    assert jobs.log(job) == "hello" and jobs.points(job) == [{"step": 1, "loss": 2.0}]
    # a job left "running" by a dead server shows as interrupted to the next one
    stale = tmp_path / "jobs" / "old"
    stale.mkdir()
    (stale / "status.json").write_text(json.dumps({"id": "old", "kind": "train", "title": "t", "state": "running",
                                                   "created": 0, "updated": 0, "pid": 2**22 + 12345}))
    assert Jobs(tmp_path / "jobs").get("old")["state"] == "interrupted"


def test_job_cancel_and_failure_are_reported(tmp_path):
    jobs = Jobs(tmp_path / "jobs")

    def slow(ctx):
        for _ in range(200):
            ctx.check()
            time.sleep(0.02)

    job = jobs.start("train", "slow", slow)
    time.sleep(0.1)
    assert jobs.cancel(job)
    assert jobs.wait(job, 10)["state"] == "cancelled"
    failing = jobs.start("index", "bad", lambda ctx: (_ for _ in ()).throw(FileNotFoundError("no such folder: /x")))
    status = jobs.wait(failing, 10)
    assert status["state"] == "failed" and status["message"] == "no such folder: /x"
    assert "Traceback" in jobs.log(failing)
    assert not jobs.cancel(failing)  # finished jobs cannot be cancelled
    # a cancel file (written by another server process for the same home) stops a job too
    (tmp_path / "jobs" / failing / "cancel").touch()
    with pytest.raises(Cancelled):
        JobContext(jobs, failing).check()


def test_check_folder_allows_only_existing_folders_inside_the_roots(state, tmp_path):
    inside = state.roots[0] / "docs"
    inside.mkdir()
    assert state.check_folder(str(inside)) == inside.resolve()
    assert state.check_folder("docs") == inside.resolve()  # relative to the first root
    with pytest.raises(PermissionError, match="outside the folders"):
        state.check_folder(str(tmp_path))
    with pytest.raises(PermissionError, match="outside the folders"):
        state.check_folder(str(inside / ".." / ".."))  # no escape through ..
    with pytest.raises(FileNotFoundError, match="folder not found"):
        state.check_folder(str(state.roots[0] / "missing"))
    with pytest.raises(ValueError, match="enter a folder"):
        state.check_folder("  ")
    (state.roots[0] / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError):
        state.check_folder(str(state.roots[0] / "file.txt"))
    (state.roots[0] / ".ssh" / "keys").mkdir(parents=True)
    for hidden in (".ssh", ".ssh/keys"):  # hidden folders are skipped by the walk, and refused when named
        with pytest.raises(PermissionError, match="hidden folder"):
            state.check_folder(str(state.roots[0] / hidden))


def test_serve_exposes_only_the_demo_folder_unless_roots_are_named(tmp_path, monkeypatch):
    import argparse

    from app.commands.serve import make_state

    monkeypatch.chdir(tmp_path)  # `serve` started from a home directory
    args = argparse.Namespace(model="tiny", backbone=None, root=None)
    state = make_state(args)
    assert tmp_path.resolve() not in state.roots and len(state.roots) == 1


def test_training_data_must_lie_inside_the_roots_and_name_a_known_kind(state, tmp_path):
    from app.ui.training_tab import start

    outside = tmp_path / "secret.jsonl"
    outside.write_text("{}")
    for spec in (f"jsonl:{outside}", "jsonl:/dev/zero", f"qa:{tmp_path / 'nowhere.jsonl'}"):
        message = start(state, spec, "", 3, 4)
        assert "outside the folders" in message and "not found" not in message, spec  # existence never told
    assert "unknown training data kind &#x27;foo&#x27;" in start(state, f"foo:{state.roots[0]}", "", 3, 4)
    assert "training data not found" in start(state, f"jsonl:{state.roots[0] / 'missing.jsonl'}", "", 3, 4)
    assert not state.jobs.running("train")


def test_demo_documents_come_from_the_standard_library(tmp_path):
    from app.demo import build_demo_docs, labelled_queries_path, training_pairs_path

    files = build_demo_docs(tmp_path / "docs", limit=6, log=lambda m: None)
    assert [f.name for f in files][:2] == ["json.md", "os.path.md"]
    text = files[0].read_text()
    assert text.startswith("# json") and "dumps(" in text and len(text) <= 6000
    queries = [json.loads(line) for line in labelled_queries_path().read_text().splitlines()]
    assert queries and all(q["relevant"][0] in {str(f) for f in files} for q in queries)
    for q in queries:  # the labelled query is held out of its document
        assert q["query"] not in open(q["relevant"][0]).read()
    pairs = [json.loads(line) for line in training_pairs_path().read_text().splitlines()]
    assert pairs and all(p["query"] and p["positive"] for p in pairs)
    mtime = files[0].stat().st_mtime_ns
    build_demo_docs(tmp_path / "docs", limit=6, log=lambda m: None)
    assert files[0].stat().st_mtime_ns == mtime  # unchanged files are not rewritten (nothing to re-index)


def test_ranking_metrics():
    from training.evaluation.metrics import ranking_metrics

    perfect = ranking_metrics(["a", "b"], {"a"})
    assert perfect == {"nDCG@10": 1.0, "recall@10": 1.0, "MRR@10": 1.0}
    second = ranking_metrics(["x", "a", "b"], {"a", "b"})
    ideal = 1 + 1 / math.log2(3)
    assert second["nDCG@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert second["MRR@10"] == 0.5 and second["recall@10"] == 1.0
    assert ranking_metrics(["x"] * 10 + ["a"], {"a"}) == {"nDCG@10": 0.0, "recall@10": 0.0, "MRR@10": 0.0}


def test_index_search_and_swap_jobs_end_to_end(state, tmp_path):
    from app.demo import build_demo_docs, labelled_queries_path, training_pairs_path
    from app.ui.indexing import run_index
    from app.services.swap import run_swap

    files = build_demo_docs(tmp_path / "docs", limit=5, log=lambda m: None)
    job = state.jobs.start("index", "demo", lambda ctx: run_index(ctx, state, "docs", [tmp_path / "docs"], files))
    status = state.jobs.wait(job, 60)
    assert status["state"] == "done", status
    assert status["result"]["documents"] == len(files) and status["result"]["files_done"] == len(files)
    hits = state.search("docs", "json", 3, filters=["name=json.md"])
    assert hits and all(h.path.endswith("json.md") for h in hits)
    # a custom instruction only changes the query side: the same index answers
    assert state.search("docs", "json", 3, instruction="Find the module that parses JSON")
    # the search tab: mode and page, marked snippets, a preview of a hit's document, the filter keys
    from app.ui.search_tab import filter_keys, preview, search

    html, line, choices = search(state, "docs", None, "", "json", 2, "", "keyword", 1)
    assert "BM25" in html and "<mark>" in html and "1 result(s)" in line  # one document has the word
    page_two = search(state, "docs", None, "", "json", 2, "", "semantic", 2)[0]
    assert 'data-rank="3"' in page_two and 'data-rank="1"' not in page_two
    first = choices["choices"][0][1]
    assert "<mark>" in preview(state, "docs", first, "json") and first.endswith(".md")
    assert "`ext` (.md)" in filter_keys(state, "docs") and "`name`" in filter_keys(state, "docs")
    assert "metadata key &#x27;colour&#x27;" in search(state, "docs", None, "", "json", 2, "colour=red", "hybrid", 1)[0]

    job = state.jobs.start("swap", "swap", lambda ctx: run_swap(
        ctx, state, "tiny-qwen2", "docs", "labelled", data=[f"jsonl:{training_pairs_path()}"], steps=3,
        queries_path=str(labelled_queries_path())))
    status = state.jobs.wait(job, 120)
    assert status["state"] == "done", status
    before, after = status["result"]["table"]
    assert (before["backbone"], after["backbone"]) == ("tiny-llama", "tiny-qwen2")
    assert all(0 <= row[m] <= 1 for row in (before, after) for m in ("nDCG@10", "recall@10", "MRR@10"))
    assert after["vectors"] == before["vectors"] > 0  # the whole collection was indexed again
    assert state.model().embedding.name == "tiny-qwen2"  # the swap made the new model active
    assert state.previous_choice() == ModelChoice("tiny")
    assert state.search("docs", "json", 2)  # and search answers with it


def test_serve_help_and_bad_auth(capsys):
    from app.cli import main
    from app.commands.serve import loopback, parse_auth

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--root" in out and "--auth" in out and "127.0.0.1" in out
    assert parse_auth("alice:secret") == ("alice", "secret")
    with pytest.raises(ValueError, match="USER:PASSWORD"):
        parse_auth("alice")
    assert loopback("127.0.0.1") and not loopback("0.0.0.0")


def test_the_ui_defaults_to_the_shipped_model_else_the_raw_backbone_with_a_note(tiny_default_checkpoint,
                                                                             monkeypatch, tmp_path):
    import argparse

    from app.services.models import FALLBACK_MODEL
    from app.commands.serve import make_state

    def state(model=None, backbone=None):
        return make_state(argparse.Namespace(model=model, backbone=backbone, root=[str(tmp_path)]))

    monkeypatch.setattr("embedder.checkpoint.DEFAULT_MODEL_DIR", tmp_path / "absent")
    fallback = state()
    assert fallback.model_choice.name == FALLBACK_MODEL and "No trained model is shipped" in fallback.model_note
    monkeypatch.setattr("embedder.checkpoint.DEFAULT_MODEL_DIR", tiny_default_checkpoint)
    shipped = state()
    assert shipped.model_choice.name is None and shipped.model_note == ""
    assert state("default", "tiny-qwen2").model_choice.as_dict() == {"name": None, "backbone": "tiny-qwen2"}
    assert state("tiny").model_choice.name == "tiny"
    # a swap of the shipped model to a backbone it is aligned to loads that alignment, no training
    from app.services.training import adapt

    running = shipped.model().embedding.name
    other = "tiny-qwen2" if running == "tiny-llama" else "tiny-llama"
    choice, done = adapt(None, shipped.model(), shipped.model_choice, other, data=[], steps=1)
    assert choice.as_dict() == {"name": None, "backbone": other} and "training skipped" in done
    assert shipped.model(choice).embedding.name == other


def test_swap_evaluation_on_a_beir_folder(tmp_path):
    """The BEIR path of the comparison goes through issue 4's mteb evaluation."""
    from embedder import PromptEmbedder
    from app.services.evaluation import METRICS, evaluate_on_beir

    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "Tomatoes need sun.", "d2": "Python parses JSON.", "d3": "Zip files compress data."}
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n"
                                                 for k, v in docs.items()))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "how to parse JSON"}) + "\n"
                                          + json.dumps({"_id": "q2", "text": "grow tomatoes"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t1\n")
    scores = evaluate_on_beir(str(folder), PromptEmbedder.from_pretrained("tiny"), "tiny")
    assert set(scores) == set(METRICS) and all(0 <= v <= 1 for v in scores.values())


def test_labelled_queries_errors_name_the_file_and_line(tmp_path):
    from app.services.evaluation import read_labelled_queries
    from training.errors import TrainingError

    path = tmp_path / "queries.jsonl"
    path.write_text('{"query": "json files", "relevant": ["json.md"]}\n{"query": "broken"\n')
    with pytest.raises(TrainingError, match=r"queries.jsonl:2: not valid JSON"):
        read_labelled_queries(path)
    path.write_text('{"query": "json files", "relevant": []}\n')
    with pytest.raises(ValueError, match="record 1"):
        read_labelled_queries(path)
    path.write_text('{"query": "json files", "relevant": "json.md"}\n')
    assert read_labelled_queries(path) == [{"query": "json files", "relevant": ["json.md"]}]
    with pytest.raises(TrainingError, match="no such file"):
        read_labelled_queries(tmp_path / "missing.jsonl")


def test_collection_dropdowns_pick_up_a_collection_created_after_the_page_was_built(state):
    """Opening a dropdown or its tab, and the timer after an indexing job moved, list new collections."""
    import gradio as gr

    from app.ui.app import build_app, collection_lists

    def create(name):
        state.store.open(name, state.model(), create=True, progress=False).close()

    create("first")
    app = build_app(state)
    blocks = list(app.blocks.values())
    by_id = {b.elem_id: b for b in blocks if isinstance(b, gr.Dropdown) and b.elem_id}
    dropdowns = [by_id["search-collection"], by_id["delete-collection"], by_id["swap-collection"]]
    create("later")  # as the demo's indexing job, an upload or the CLI in another process would

    def fire(block, event: str, values: dict) -> dict:
        """Run the handlers of one event as Gradio would: {output component: update}."""
        updates = {}
        for fn in app.fns.values():
            if (block._id, event) in fn.targets:
                result = fn.fn(*[values.get(c) for c in fn.inputs])
                result = result if len(fn.outputs) > 1 else (result,)
                updates.update(zip(fn.outputs, result))
        return updates

    selected = {dropdown: "first" for dropdown in dropdowns}
    for dropdown in dropdowns:
        update = fire(dropdown, "focus", selected)[dropdown]
        assert update["choices"] == ["first", "later"] and "value" not in update  # the selection stays
    tabs = [b for b in blocks if isinstance(b, gr.Tab) and b.label in ("Search", "Collections", "Backbones")]
    refreshed = {}
    for tab in tabs:
        refreshed.update(fire(tab, "select", selected))
    assert all(refreshed[d]["choices"] == ["first", "later"] for d in dropdowns)

    # the timer: only when the collections differ from what the page lists
    assert collection_lists(state, ["first", "later"], "first", "first", "first")[:3] == (gr.skip(),) * 3
    state.store.drop("first")
    search, victim, swap, listed = collection_lists(state, ["first", "later"], "first", "first", "first")
    assert listed == ["later"] and search["value"] == swap["value"] == "later"  # a gone selection moves on
    assert victim == {"__type__": "update", "choices": ["later"], "value": None}  # nothing preselected to delete


def test_a_cancelled_job_says_what_it_kept(tmp_path):
    jobs = Jobs(tmp_path / "jobs")

    def work(ctx):
        raise Cancelled("nothing was kept: no checkpoint had been written yet")

    status = jobs.wait(jobs.start("train", "t", work), 10)
    assert status["state"] == "cancelled" and status["message"].endswith("no checkpoint had been written yet")
    plain = jobs.wait(jobs.start("index", "i", lambda ctx: (_ for _ in ()).throw(Cancelled())), 10)
    assert plain["message"] == "cancelled; what was finished is kept"


def test_running_jobs_show_the_time_left():
    from app.ui import render

    status = {"title": "train", "state": "running", "progress": 0.25, "created": 1000.0, "updated": 1600.0}
    assert "about 30 min left" in render.job(status)  # 10 minutes for a quarter: 30 to go
    assert "left" not in render.job({**status, "progress": 0.01})  # too early to tell
    assert "left" not in render.job({**status, "state": "done", "seconds": 600})


def test_swap_offers_real_targets_and_refuses_the_active_one_or_a_collection_without_an_index(state):
    from app.ui.backbones_tab import LABELLED, start, swap_targets

    assert swap_targets(state) == ["tiny-llama", "tiny-qwen2", "tiny-gemma3"]  # a tiny model: the test presets
    assert "tiny-llama" not in swap_targets(AppState(roots=state.roots, model_choice=ModelChoice(None)))
    active = state.model().embedding.name
    assert "active backbone already" in start(state, active, "docs", LABELLED, "", "", "", 5)
    other = next(t for t in swap_targets(state) if t != active)
    assert "no index for the active model" in start(state, other, "nothing-here", LABELLED, "", "", "", 5)
    assert not state.jobs.running("swap")


def test_the_demo_training_pairs_are_accepted_outside_the_roots(state):
    from app.demo import training_pairs_path
    from app.ui.training_tab import start

    message = start(state, f"jsonl:{training_pairs_path()}", "", 1, 2)
    assert "outside the folders" not in message
    for job in state.jobs.running("train"):
        state.jobs.cancel(job["id"])
