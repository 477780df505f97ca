"""Backbones tab: the Embedding LLMs and their status; one-click swap with a before/after comparison
(metrics table, chart, the same query's top results from both); switch back."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from app.demo import labelled_queries_path
from app.services.evaluation import METRICS
from app.services.swap import run_swap
from embedder.backbones import BACKBONES

from . import render
from .collection_list import collection_dropdown
from .state import AppState, ModelChoice

LABELLED = "the collection's labelled queries"
BEIR = "a BEIR folder"


def backbones_table(state: AppState) -> pd.DataFrame:
    model = state.loaded_model()
    active = model.embedding.name if model is not None else None
    rows = [[b.name, b.arch, b.params, b.hidden_size, b.layers, b.status(), "active" if b.name == active else "",
             b.role] for b in BACKBONES.values()]
    return pd.DataFrame(rows, columns=["backbone", "arch", "params", "hidden", "layers", "status", "", "role"])


def labelled_path(collection: str | None) -> str:
    if not collection:
        return ""
    path = labelled_queries_path(collection)
    return str(path) if path.is_file() else ""


def swap_targets(state: AppState) -> list[str]:
    """The backbones a swap may go to: the real ones, or the tiny test presets when a tiny model is active."""
    tiny = (state.model_choice.name or "").startswith("tiny")
    return [name for name, backbone in BACKBONES.items() if backbone.tiny == tiny]


def start(state: AppState, target: str, collection: str, source: str, queries: str, beir: str, data: str,
          steps: float, only_if_better: bool = False) -> str:
    if not target:
        return render.error("choose the backbone to swap to")
    if target not in BACKBONES:
        return render.error(f"unknown backbone '{target}'")
    active = state.loaded_model()
    if active is not None and active.embedding.name == target:
        return render.error(f"{target} is the active backbone already; choose another to swap to")
    status = BACKBONES[target].status()
    if status != "ready":
        return render.error(f"{target} is {status}: run `promptembedder prepare {target}` on the server first")
    if not collection:
        return render.error("choose the collection to re-index and compare on")
    if active is not None and not state.instructions(collection, active):
        return render.error(f"'{collection}' has no index for the active model ({state.model_choice.label}) to "
                            "compare with; index it in the Collections tab first")
    if state.jobs.running("swap"):
        return render.error("a swap is already running")
    if source == LABELLED and not Path(queries or "").is_file():
        return render.error(f"labelled queries not found: {queries or '(empty)'}; a JSONL file of "
                            '{"query": ..., "relevant": [document path, ...]} lines')
    if source == BEIR and not (Path(beir or "") / "corpus.jsonl").is_file():
        return render.error(f"{beir or '(empty)'} is not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    specs = [line.strip() for line in (data or "").splitlines() if line.strip()]
    state.jobs.start("swap", f"swap to {target} on '{collection}'",
                     lambda ctx: run_swap(ctx, state, target, collection, "labelled" if source == LABELLED else "beir",
                                          beir, specs, int(steps or 100), queries, bool(only_if_better)),
                     {"target": target, "collection": collection})
    return render.ok(f"Swapping to {target}: align (if needed), re-index '{collection}', evaluate both. "
                     "Search keeps working with the current model meanwhile.")


def switch_back(state: AppState) -> str:
    previous = state.previous_choice()
    if previous is None:
        return render.error("nothing to switch back to: no swap has happened")
    current = state.model_choice
    try:
        state.model(previous)
    except Exception as exc:
        return render.error(f"cannot load {previous.label}: {exc}")
    state.set_active(previous, previous=current)
    return render.ok(f"switched back: searching with {previous.label} again ({current.label} is one click away)")


def comparison(status: dict | None):
    """(metrics table, chart HTML) of the latest finished swap."""
    table = (status or {}).get("result", {}).get("table") if status and status["state"] == "done" else None
    if not table:
        columns = ["", "model", "backbone", *METRICS, "latency (ms)", "index size (KB)", "vectors"]
        return pd.DataFrame(columns=columns), ""
    labelled = [{**row, "label": f"{row['']}: {row['backbone']}"} for row in table]
    return pd.DataFrame(table), render.metric_bars(labelled, list(METRICS), "label")


def compare(state: AppState, query: str) -> tuple[str, str]:
    status = state.jobs.latest("swap")
    if not status or status["state"] != "done":
        message = render.error("run a swap first; then the same query is searched with both models")
        return message, message
    if not query or not query.strip():
        message = render.error("Type a query to compare.")
        return message, message
    result = status["result"]
    out = []
    for side in ("old", "new"):
        choice = ModelChoice(result[side]["name"], result[side].get("backbone"))
        try:
            hits = state.search(result["collection"], query.strip(), 5, instruction=result["instruction"],
                                model=state.model(choice), mode="semantic")  # the models themselves, compared
            out.append(f"<h4>{choice.label}</h4>" + render.hits(hits, "semantic"))
        except Exception as exc:
            out.append(render.error(str(exc)))
    return out[0], out[1]


def tick(state: AppState, seen: float | None):
    status = state.jobs.latest("swap")
    updated = status["updated"] if status else 0.0
    if updated == seen:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), seen
    table, chart = comparison(status)
    log = state.jobs.log(status["id"], tail=30) if status else ""
    return (render.job(status, "No swap yet."), table, chart, log, backbones_table(state), updated)


def build(state: AppState) -> dict:
    with gr.Tab("Backbones", id="backbones") as tab:
        active = gr.Markdown(elem_id="active-model")
        table = gr.Dataframe(label="Backbones", elem_id="backbones-table", interactive=False)
        gr.Markdown("**Swap the Embedding LLM.** A trained checkpoint gets a new alignment (only the alignment "
                    "trains; skipped when it has one); a raw backbone is simply replaced. The collection is "
                    "indexed again with the new backbone and both are evaluated side by side.")
        with gr.Row():
            targets = swap_targets(state)
            target = gr.Dropdown(targets, value=None, label="Swap to", elem_id="swap-target")
            collection = gr.Dropdown(label="Collection", elem_id="swap-collection", allow_custom_value=True)
            steps = gr.Number(value=100, precision=0, label="Alignment steps", elem_id="swap-steps")
            only_if_better = gr.Checkbox(value=False, label="Activate only if it scores better", elem_id="swap-if-better")
        source = gr.Radio([LABELLED, BEIR], value=LABELLED, label="Evaluate on", elem_id="swap-source")
        with gr.Row():
            queries = gr.Textbox(label="Labelled queries (JSONL: query, relevant document paths)", elem_id="swap-queries")
            beir = gr.Textbox(label="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)", elem_id="swap-beir")
        data = gr.Textbox(label="Alignment training data (KIND:PATH per line; used only when an alignment must be trained)",
                          lines=2, elem_id="swap-data")
        with gr.Row():
            swap_button = gr.Button("Swap backbone", variant="primary", elem_id="swap-button")
            cancel_button = gr.Button("Cancel", elem_id="swap-cancel")
            back_button = gr.Button("Switch back", elem_id="swap-back")
        message = gr.HTML(elem_id="swap-message")
        job = gr.HTML(elem_id="swap-job")
        metrics = gr.Dataframe(label="Before / after", elem_id="swap-table", interactive=False)
        chart = gr.HTML(elem_id="swap-chart")
        log = gr.Textbox(label="Swap log", lines=6, max_lines=6, interactive=False, elem_id="swap-log")
        gr.Markdown("**The same query, both models**")
        with gr.Row():
            compare_query = gr.Textbox(label="Query", elem_id="compare-query", scale=4)
            compare_button = gr.Button("Compare", elem_id="compare-button", scale=1)
        with gr.Row():
            before = gr.HTML(elem_id="compare-before")
            after = gr.HTML(elem_id="compare-after")

    def cancel():
        running = state.jobs.running("swap")
        for status in running:
            state.jobs.cancel(status["id"])
        return render.note("cancelling the swap; the active model does not change" if running else "no swap is running")

    swap_button.click(lambda *a: start(state, *a), [target, collection, source, queries, beir, data, steps,
                                                    only_if_better], [message])
    cancel_button.click(cancel, None, [message])
    back_button.click(lambda: switch_back(state), None, [message])
    compare_button.click(lambda q: compare(state, q), [compare_query], [before, after])
    compare_query.submit(lambda q: compare(state, q), [compare_query], [before, after])
    collection.change(labelled_path, [collection], [queries])
    for event in (tab.select, collection.focus):
        event(lambda c: collection_dropdown(state, c), [collection], [collection], show_progress="hidden")
    return {"active": active, "table": table, "collection": collection, "queries": queries, "data": data,
            "job": job, "metrics": metrics, "chart": chart, "log": log}
