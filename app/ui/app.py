"""The Gradio Blocks app: a header with the active model and running jobs, four tabs, one timer.

Everything a tab shows about jobs comes from the job files (see jobs.py), refreshed by the timer,
so a reloaded page shows the same progress.
"""
from __future__ import annotations

import html

import gradio as gr

from app.demo import training_pairs_path

from . import backbones_tab, collections_tab, render, search_tab, training_tab
from .collection_list import collection_dropdown
from .state import AppState

TICK_SECONDS = 1.5


def header(state: AppState) -> str:
    model = state.loaded_model()
    where = f"Embedding LLM <b>{html.escape(model.embedding.name)}</b>" if model is not None else "loading..."
    running = state.jobs.running()
    jobs = "".join(f"<li>{html.escape(j['title'])}: {100 * j.get('progress', 0):.0f}% ({html.escape(str(j.get('message', '')))})</li>"
                   for j in running)
    text = (f'<div id="pe-header">&#8203;<b>Active model:</b> <code>{html.escape(state.model_choice.label)}</code> · {where}'
            + (f"<ul>{jobs}</ul>" if jobs else "") + "</div>")
    if state.model_note:
        text += render.note(state.model_note)
    return text


def collection_lists(state: AppState, listed: list[str] | None, search_selected: str | None,
                     victim_selected: str | None, swap_selected: str | None) -> tuple:
    """The search, delete and swap collection dropdowns, then the names listed; only when the
    collections differ from what the page lists (an indexing job moved: it may have created one)."""
    names = state.collection_names()
    if names == listed:
        return gr.skip(), gr.skip(), gr.skip(), listed
    return (collection_dropdown(state, search_selected), collection_dropdown(state, victim_selected, pick=False),
            collection_dropdown(state, swap_selected), names)


def build_app(state: AppState, examples: list[str] | None = None) -> gr.Blocks:
    with gr.Blocks(title="PromptEmbedder") as app:
        gr.Markdown("## PromptEmbedder\nSearch your documents with a dual-LLM soft-prompting embedder; index, "
                    "retrain, and swap the Embedding LLM.")
        head = gr.HTML(lambda: header(state), elem_id="header")  # a callable: fresh on every page load
        with gr.Tabs():
            search = search_tab.build(state, examples or [])
            collections = collections_tab.build(state)
            training = training_tab.build(state)
            backbones = backbones_tab.build(state)
        seen_index = gr.State(None)
        seen_swap = gr.State(None)
        listed = gr.State(None)  # the collections this page's dropdowns list
        dropdowns = [search["collection"], collections["victim"], backbones["collection"]]
        timer = gr.Timer(TICK_SECONDS)

        def tick(index_seen, swap_seen, listed_names, *selected):
            job, problems, stats, index_now = collections_tab.tick(state, index_seen)
            lists = (collection_lists(state, listed_names, *selected) if index_now != index_seen
                     else (gr.skip(),) * len(dropdowns) + (listed_names,))
            train_job, curve, log = training_tab.tick(state)
            swap = backbones_tab.tick(state, swap_seen)
            return (header(state), job, problems, stats, index_now, *lists, train_job, curve, log, *swap[:5], swap[5],
                    f"**Active model:** `{state.model_choice.label}`")

        timer.tick(tick, [seen_index, seen_swap, listed, *dropdowns],
                   [head, collections["job"], collections["problems"], collections["stats"], seen_index,
                    *dropdowns, listed, training["job"], training["curve"], training["log"],
                    backbones["job"], backbones["metrics"], backbones["chart"], backbones["log"], backbones["table"],
                    seen_swap, backbones["active"]], show_progress="hidden")

        def on_load():
            search_list, instruction = search["refresh"]()
            swap_list = collection_dropdown(state)

            pairs = training_pairs_path()
            return (search_list, instruction, collection_dropdown(state, pick=False), training["models"](),
                    swap_list, backbones_tab.labelled_path(swap_list["value"]),
                    f"jsonl:{pairs}" if pairs.is_file() else "", state.collection_names())

        app.load(on_load, None, [search["collection"], search["instruction"], collections["victim"],
                                 training["trained"], backbones["collection"], backbones["queries"], backbones["data"],
                                 listed])
        training["trained"].focus(training["models"], None, [training["trained"]])
    return app
