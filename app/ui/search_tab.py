"""Search tab: collection, instruction, query, mode, top-k and page, metadata filters (the collection's keys
listed); result cards with marked snippets, latency, and a preview of a hit's whole document."""
from __future__ import annotations

import re
import time

import gradio as gr

from indexer.filters import Filter

from . import render
from .collection_list import collection_dropdown
from .state import AppState


def parse_filters(text: str) -> list[str]:
    """One filter per line or comma: key=value, key!=value, key>=value, ..."""
    return [part.strip() for part in re.split(r"[\n,]", text or "") if part.strip()]


def search(state: AppState, collection: str, instruction: str, custom: str, query: str, k: float,
           filters: str, mode: str = "hybrid", page: float = 1):
    """(results HTML, latency line, preview choices); every user mistake comes back as a message, never a
    traceback."""
    no_preview = gr.update(choices=[], value=None)
    if not collection:
        return render.error("Choose a collection first (index one in the Collections tab)."), "", no_preview
    if not query or not query.strip():
        return render.error("Type a query to search for."), "", no_preview
    try:
        parsed = parse_filters(filters)
        for item in parsed:
            Filter.parse(item)
        custom = (custom or "").strip()
        if not custom and instruction not in state.instructions(collection):
            instruction = None  # a value left over from the previously chosen collection: use this one's
        started = time.perf_counter()
        offset = (max(int(page or 1), 1) - 1) * int(k)
        found = state.search(collection, query.strip(), int(k), instruction=custom or instruction, filters=parsed,
                             mode=mode, offset=offset)
        seconds = time.perf_counter() - started
    except Exception as exc:  # the indexer's and the embedder's messages are written for users
        return render.error(str(exc)), "", no_preview
    running = state.jobs.running("index")
    partial = " (indexing is still running: results come from what is indexed so far)" if any(
        (j.get("result") or {}).get("collection") == collection for j in running) else ""
    line = f"{len(found)} result(s) in {1000 * seconds:.0f} ms with {state.model_choice.label}{partial}"
    previews = [(f"{rank}. {hit.relative_path}", hit.path) for rank, hit in enumerate(found, offset + 1)]
    return render.hits(found, mode, offset), line, gr.update(choices=previews, value=None)


def preview(state: AppState, collection: str, path: str | None, query: str) -> str:
    """The whole document of a hit, as indexed, with the query's words marked."""
    if not collection or not path:
        return ""
    try:
        return render.document(state.document_text(collection, path), query or "")
    except Exception as exc:
        return render.error(str(exc))


def filter_keys(state: AppState, collection: str | None) -> str:
    if not collection:
        return ""
    try:
        return render.keys(state.metadata_keys(collection))
    except Exception:  # no index for this model yet: the search says so when it runs
        return ""


def choices(state: AppState, collection: str | None = None, instruction: str | None = None):
    """Fresh collection and instruction choices; each selection stays while it still exists."""
    listed = collection_dropdown(state, collection)
    collection = listed.get("value", collection)
    try:
        instructions = state.instructions(collection) if collection else []
    except Exception:
        instructions = []
    if instruction in instructions:  # kept: left out of the update, as collection_dropdown does
        return listed, gr.update(choices=instructions)
    return listed, gr.update(choices=instructions, value=instructions[0] if instructions else None)


def build(state: AppState, examples: list[str]) -> dict:
    with gr.Tab("Search", id="search") as tab:
        with gr.Row():
            # custom values allowed: a click may race the update of the choices; search() checks the values itself
            collection = gr.Dropdown(label="Collection", elem_id="search-collection", scale=2, allow_custom_value=True)
            instruction = gr.Dropdown(label="Instruction (the collection's)", elem_id="search-instruction", scale=4,
                                      allow_custom_value=True)
            refresh = gr.Button("Refresh lists", size="sm", scale=1)
        custom = gr.Textbox(label="Custom instruction (optional: replaces the one above for the query)",
                            elem_id="search-custom", placeholder="e.g. Given a question, retrieve the passage that answers it")
        query = gr.Textbox(label="Query", elem_id="search-query", placeholder="What are you looking for?")
        with gr.Row():
            mode = gr.Radio(["hybrid", "semantic", "keyword"], value="hybrid", label="Mode", elem_id="search-mode",
                            info="hybrid: meaning and keywords fused; semantic: meaning; keyword: exact words (BM25)")
            k = gr.Slider(1, 50, value=5, step=1, label="Results per page", elem_id="search-k")
            page = gr.Number(value=1, minimum=1, precision=0, label="Page", elem_id="search-page")
        filters = gr.Textbox(label="Metadata filters (key=value, key!=value, key>=value; comma-separated)",
                             elem_id="search-filters", placeholder="ext=.md, name!=os.md")
        keys = gr.Markdown(elem_id="search-filter-keys")
        button = gr.Button("Search", variant="primary", elem_id="search-button")
        if examples:
            gr.Examples(examples, inputs=[query], label="Try")
        latency = gr.Markdown(elem_id="search-latency")
        results = gr.HTML(elem_id="search-results")
        with gr.Accordion("Preview a hit's whole document", open=False):
            document = gr.Dropdown(label="Hit", elem_id="search-preview-choice", choices=[])
            shown = gr.HTML(elem_id="search-preview")

    inputs = [collection, instruction, custom, query, k, filters, mode, page]
    run = lambda *args: search(state, *args)  # noqa: E731
    button.click(run, inputs, [results, latency, document])
    query.submit(run, inputs, [results, latency, document])
    document.change(lambda c, p, q: preview(state, c, p, q), [collection, document, query], [shown])
    collection.change(lambda c: choices(state, c)[1], [collection], [instruction])
    collection.change(lambda c: filter_keys(state, c), [collection], [keys], show_progress="hidden")
    lists = lambda c, i: choices(state, c, i)  # noqa: E731
    for event in (refresh.click, tab.select):
        event(lists, [collection, instruction], [collection, instruction], show_progress="hidden")
    collection.focus(lambda c: collection_dropdown(state, c), [collection], [collection], show_progress="hidden")
    instruction.focus(lambda c, i: lists(c, i)[1], [collection, instruction], [instruction], show_progress="hidden")
    return {"collection": collection, "instruction": instruction, "refresh": lambda c=None: choices(state, c)}
