"""The Gradio Blocks app: a header with the active model and running jobs, four tabs, one timer.

Everything a tab shows about jobs comes from the job files (see jobs.py), refreshed by the timer,
so a reloaded page shows the same progress.
"""
from __future__ import annotations

import html

import gradio as gr

from . import backbones_tab, collections_tab, render, search_tab, training_tab
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
        timer = gr.Timer(TICK_SECONDS)

        def tick(index_seen, swap_seen):
            job, problems, stats, index_seen = collections_tab.tick(state, index_seen)
            train_job, curve, log = training_tab.tick(state)
            swap = backbones_tab.tick(state, swap_seen)
            return (header(state), job, problems, stats, index_seen, train_job, curve, log, *swap[:5], swap[5],
                    f"**Active model:** `{state.model_choice.label}`")

        timer.tick(tick, [seen_index, seen_swap],
                   [head, collections["job"], collections["problems"], collections["stats"], seen_index,
                    training["job"], training["curve"], training["log"],
                    backbones["job"], backbones["metrics"], backbones["chart"], backbones["log"], backbones["table"],
                    seen_swap, backbones["active"]], show_progress="hidden")

        def on_load():
            names = state.collection_names()
            current = state.demo_collection if state.demo_collection in names else (names[0] if names else None)
            chosen, instruction = search["refresh"](current)
            from app.demo import training_pairs_path

            pairs = training_pairs_path()
            return (chosen, instruction, collections["names"](), training["models"](),
                    gr.update(choices=names, value=current), backbones_tab.labelled_path(current),
                    f"jsonl:{pairs}" if pairs.is_file() else "")

        app.load(on_load, None, [search["collection"], search["instruction"], collections["victim"],
                                 training["trained"], backbones["collection"], backbones["queries"], backbones["data"]])
        training["trained"].focus(training["models"], None, [training["trained"]])
    return app
