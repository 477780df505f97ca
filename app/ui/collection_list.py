"""The one refresh of every collection dropdown in the UI (search, delete, swap).

Called on page load, when a tab or a dropdown is opened, after a delete, and by the timer when an
indexing job has created a collection, so collections made anywhere (a background job, an upload,
the CLI in another process) show up without a manual refresh.
"""
from __future__ import annotations

import gradio as gr

from .state import AppState


def collection_dropdown(state: AppState, current: str | None = None, pick: bool = True) -> dict:
    """Fresh choices for a collection dropdown; the selection stays while its collection exists.

    A gone (or empty) selection becomes the demo collection or the first one, or stays empty when
    `pick` is False (the delete dropdown: nothing is preselected for deletion). A kept selection is
    left out of the update: sending it again would overwrite what the user types into an open dropdown.
    """
    names = state.collection_names()
    if current in names:
        return gr.update(choices=names)
    value = None
    if pick and names:
        value = state.demo_collection if state.demo_collection in names else names[0]
    return gr.update(choices=names, value=value)
