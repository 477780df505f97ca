"""The served UI in headless Chromium: search, upload + stats, bad inputs, training, the backbone swap."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import choose, fill, shot, tab

pytestmark = pytest.mark.browser

RESULT = "#search-results .pe-hit"


def wait_for_jobs(home, kind: str, timeout: float = 120) -> dict:
    """Block until the newest job of a kind finished; its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [json.loads(p.read_text()) for p in (home / "jobs").glob("*/status.json")]
        mine = sorted((s for s in statuses if s["kind"] == kind), key=lambda s: s["created"])
        if mine and mine[-1]["state"] not in ("queued", "running"):
            return mine[-1]
        time.sleep(0.3)
    raise AssertionError(f"no finished {kind} job after {timeout} s")


def search(page, query: str, filters: str = "", custom: str = "") -> None:
    fill(page, "search-custom", custom)
    fill(page, "search-filters", filters)
    fill(page, "search-query", query)
    page.locator("#search-button").click()


def test_search_returns_the_expected_document(page, server):
    status = wait_for_jobs(server["home"], "index")
    assert status["state"] == "done", status
    page.reload()
    page.wait_for_function("(document.querySelector('#search-instruction input') || {}).value")
    # a metadata filter narrows to one module's file: every hit must come from json.md
    search(page, "encode Python objects as JSON text", filters="name=json.md")
    page.locator(RESULT).first.wait_for()
    sources = page.locator("#search-results .pe-source").all_inner_texts()
    assert sources and all(s.split(" (+")[0] == "json.md" for s in sources), sources  # paths relative to the folder
    assert "result(s) in" in page.locator("#search-latency").inner_text()
    shot(page, "01-search-filtered")
    # without filters the top-k spans the collection, with scores and snippets
    search(page, "read and write JSON files")
    page.wait_for_function("document.querySelectorAll('#search-results .pe-hit').length == 5")
    assert page.locator("#search-results .pe-score").count() == 5
    assert page.locator("#search-results mark").count() > 0  # the query's words are marked in the snippets
    shot(page, "02-search")
    # keyword mode says what its scores are; semantic mode ranks every document, so page 2 starts at 6
    page.locator("#search-mode").get_by_text("keyword", exact=True).click()
    page.locator("#search-button").click()
    page.locator("#search-results .pe-meta").filter(has_text="BM25").wait_for()
    page.locator("#search-mode").get_by_text("semantic", exact=True).click()
    fill(page, "search-page", "2")
    page.locator("#search-button").click()
    page.wait_for_function("(document.querySelector('#search-results .pe-hit') || {}).dataset?.rank === '6'")
    fill(page, "search-page", "1")
    page.locator("#search-mode").get_by_text("hybrid", exact=True).click()


def test_uploaded_file_is_indexed_shows_in_stats_and_is_found(page, server, tmp_path):
    wait_for_jobs(server["home"], "index")  # the demo's own indexing first: one writer at a time
    text = "The zebra-striped lighthouse keeper catalogues migrating narwhals every Tuesday at dawn."
    upload = tmp_path / "narwhals.txt"
    upload.write_text(text)
    tab(page, "Collections")
    fill(page, "index-collection", "uploads")
    page.locator("#index-upload input[type=file]").set_input_files(str(upload))
    page.locator("#index-upload").get_by_text("narwhals.txt").first.wait_for()
    page.locator("#index-upload-button").click()
    page.locator("#index-message .pe-ok").wait_for()
    page.locator("#index-job [data-state=done]").filter(has_text="uploaded").wait_for()  # the page default: 90 s
    page.get_by_role("button", name="Refresh stats").click()
    row = page.locator("#collections-stats [role=row]").filter(has_text="uploads")
    row.wait_for()
    cells = row.locator("[role=gridcell], td").all_inner_texts()
    assert cells[1].strip() == "1" and int(cells[2]) >= 1, cells  # one document, its chunk(s)
    shot(page, "03-collections-after-upload")
    # the same text as query, under the document-side instruction, is the document itself: rank 1
    tab(page, "Search")
    page.get_by_role("button", name="Refresh lists").click()
    choose(page, "search-collection", "uploads")
    page.wait_for_function("(document.querySelector('#search-instruction input') || {}).value"
                           " === 'Retrieve semantically similar text.'")  # the tiny model's own instruction
    search(page, text, custom="Represent this document for retrieval.")
    page.locator(RESULT).first.wait_for()
    assert page.locator("#search-results .pe-source").first.inner_text().split(" (+")[0].endswith("narwhals.txt")


def test_bad_inputs_show_clear_messages(page, server):
    search(page, "   ")
    page.locator("#search-results .pe-error").filter(has_text="Type a query").wait_for()
    search(page, "anything", filters="name")
    page.locator("#search-results .pe-error").filter(has_text="cannot read filter").wait_for()
    search(page, "anything", filters="colour=red")  # an unknown key: named, with the keys there are
    page.locator("#search-results .pe-error").filter(has_text="metadata key 'colour'").wait_for()
    tab(page, "Collections")
    fill(page, "index-folder", str(server["root"] / "no-such-folder"))
    page.locator("#index-folder-button").click()
    page.locator("#index-message .pe-error").filter(has_text="folder not found").wait_for()
    fill(page, "index-folder", str(server["outside"]))
    page.locator("#index-folder-button").click()
    page.locator("#index-message .pe-error").filter(has_text="outside the folders").wait_for()
    shot(page, "04-bad-folder")
    fill(page, "index-folder", "")
    page.locator("#index-folder-button").click()
    page.locator("#index-message .pe-error").filter(has_text="enter a folder").wait_for()
    # a folder inside the roots is accepted
    fill(page, "index-folder", str(server["root"] / "notes"))
    fill(page, "index-collection", "notes")
    page.locator("#index-folder-button").click()
    page.locator("#index-message .pe-ok").wait_for()
    assert wait_for_jobs(server["home"], "index")["state"] == "done"


def test_training_runs_in_the_background_with_a_loss_curve(page, server):
    tab(page, "Training")
    assert "pairs.jsonl" in page.locator("#train-data textarea").input_value()  # the demo's pairs, pre-filled
    fill(page, "train-steps", "6")
    fill(page, "train-batch", "4")
    page.locator("#train-start").click()
    page.locator("#train-message .pe-ok").wait_for()
    status = wait_for_jobs(server["home"], "train", timeout=120)
    assert status["state"] == "done", status
    page.locator("#train-job [data-state=done]").wait_for()
    assert "step 6/6" in page.locator("#train-log textarea").input_value()
    page.locator("#train-curve canvas, #train-curve svg").first.wait_for()
    shot(page, "05-training")


def test_swap_flow_compares_both_backbones_and_switches_back(page, server):
    assert wait_for_jobs(server["home"], "index")["state"] == "done"
    page.reload()
    tab(page, "Backbones")
    choose(page, "swap-target", "tiny-qwen2")
    choose(page, "swap-collection", "python-docs")
    page.wait_for_function("document.querySelector('#swap-queries textarea').value.endsWith('python-docs.jsonl')")
    fill(page, "swap-steps", "5")
    page.locator("#swap-button").click()
    page.locator("#swap-message .pe-ok").wait_for()
    status = wait_for_jobs(server["home"], "swap", timeout=150)
    assert status["state"] == "done", status
    table = page.locator("#swap-table")
    table.filter(has_text="tiny-qwen2").wait_for(timeout=30_000)  # the timer brings the finished job
    text = table.inner_text()
    for column in ("nDCG@10", "recall@10", "MRR@10", "latency (ms)", "index size (KB)"):
        assert column in text
    assert "tiny-llama" in text and "tiny-qwen2" in text
    # the chart draws one bar per metric and model, each as wide as its value
    bars = page.locator("#swap-chart .pe-chart-fill")
    assert bars.count() == 6
    widths = [bars.nth(i).evaluate("e => e.getBoundingClientRect().width") for i in range(6)]
    assert sum(w > 0 for w in widths) >= 3, widths  # tiny models score above zero on most metrics
    fill(page, "compare-query", "read and write JSON files")
    page.locator("#compare-button").click()
    page.locator("#compare-before .pe-hit").first.wait_for()
    page.locator("#compare-after .pe-hit").first.wait_for()
    shot(page, "06-swap-comparison")
    # the comparison survives a page reload (it is read from the job files)
    page.reload()
    tab(page, "Backbones")
    page.locator("#swap-table").filter(has_text="tiny-qwen2").wait_for()
    page.locator("#swap-back").click()
    page.locator("#swap-message .pe-ok").filter(has_text="switched back").wait_for()
    page.locator("#active-model").filter(has_text="tiny").wait_for()
    assert json.loads((server["home"] / "ui-state.json").read_text())["active"]["name"] == "tiny"
