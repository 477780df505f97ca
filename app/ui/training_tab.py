"""Training tab: start a run on chosen data and steps; live progress, loss curve and log; cancel;
make the result the active model."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from app.demo import training_pairs_path
from app.services.models import trained_models
from app.services.training import train_job
from training.data import Source

from . import render
from .state import AppState, ModelChoice

ACTIVE = "(the active model)"
START_CHOICES = [ACTIVE, "smollm2-135m", "qwen2.5-0.5b", "gemma3-270m", "tiny"]


def start(state: AppState, data: str, start_from: str, steps: float, batch_size: float) -> str:
    specs = [line.strip() for line in (data or "").splitlines() if line.strip()]
    if not specs:
        return render.error("name the training data: one KIND:PATH per line (jsonl, beir, sts, qa, paraphrase)")
    if state.jobs.running("train"):
        return render.error("a training run is already going; cancel it or wait for it to finish")
    if not steps or steps < 1 or not batch_size or batch_size < 2:
        return render.error("steps must be at least 1 and the batch size at least 2 (in-batch negatives)")

    demo_data = training_pairs_path().resolve()
    for spec in specs:
        try:
            source = Source.parse(spec)
            # only files under the roots, as for indexing; and the demo's own pairs, which the tab offers
            path = demo_data if source.path.resolve() == demo_data else state.check_inside_roots(source.path)
        except (ValueError, PermissionError) as exc:
            return render.error(str(exc))
        if not path.exists():
            return render.error(f"training data not found: {path}")
        if not (path.is_file() or path.is_dir()):
            return render.error(f"{path} is not a file or folder")
    choice = state.model_choice if start_from in (None, "", ACTIVE) else ModelChoice(start_from)
    state.jobs.start("train", f"train from {choice.label}, {int(steps)} steps",
                     lambda ctx: train_job(ctx, specs, int(steps), int(batch_size), choice),
                     {"data": specs, "steps": int(steps), "batch_size": int(batch_size), "start_from": choice.as_dict()})
    return render.ok("Training started in the background; progress, loss curve and log below. Search keeps working.")


def cancel(state: AppState) -> str:
    running = state.jobs.running("train")
    for status in running:
        state.jobs.cancel(status["id"])
    return render.note("cancelling after the current step" if running else "no training run is going")


def activate(state: AppState, path: str) -> str:
    if not path:
        return render.error("choose a trained model first")
    previous = state.model_choice
    choice = ModelChoice(path)
    try:
        state.model(choice)  # load it now: a broken checkpoint fails here, not in the next search
    except Exception as exc:
        return render.error(f"cannot load {path}: {exc}")
    state.set_active(choice, previous=previous)
    return render.ok(f"{path} is the active model. Collections need an index for it: index them again "
                     "in the Collections tab (the stored chunks are re-used).")


def tick(state: AppState):
    status = state.jobs.latest("train")
    if status is None:
        return render.job(None, "No training run yet."), gr.skip(), ""
    points = [p for p in state.jobs.points(status["id"]) if "loss" in p]
    curve = pd.DataFrame({"step": [p["step"] for p in points], "loss": [p["loss"] for p in points]})
    return render.job(status), curve, state.jobs.log(status["id"], tail=40)


def default_data() -> str:
    path = training_pairs_path()
    return f"jsonl:{path}" if path.is_file() else ""


def build(state: AppState) -> dict:
    with gr.Tab("Training", id="training") as tab:
        gr.Markdown("Train the Prompting LLM and the alignment (the Embedding LLM stays frozen) on your data. "
                    "Data: one `KIND:PATH[::INSTRUCTION]` per line; kinds: `jsonl` (query/positive/negatives), "
                    "`beir` (a BEIR folder, train split), `sts`, `qa`, `paraphrase`.")
        data = gr.Textbox(label="Training data", lines=3, value=default_data(), elem_id="train-data")
        with gr.Row():
            start_from = gr.Dropdown(START_CHOICES, value=ACTIVE, label="Start from", allow_custom_value=True,
                                     elem_id="train-start-from")
            steps = gr.Number(value=50, precision=0, label="Steps", elem_id="train-steps")
            batch_size = gr.Number(value=8, precision=0, label="Batch size", elem_id="train-batch")
        with gr.Row():
            start_button = gr.Button("Start training", variant="primary", elem_id="train-start")
            cancel_button = gr.Button("Cancel", elem_id="train-cancel")
        message = gr.HTML(elem_id="train-message")
        job = gr.HTML(elem_id="train-job")
        curve = gr.LinePlot(x="step", y="loss", title="Training loss", elem_id="train-curve", height=260)
        log = gr.Textbox(label="Log", lines=10, max_lines=10, elem_id="train-log", interactive=False)
        with gr.Row():
            trained = gr.Dropdown(label="Trained models", elem_id="train-models", scale=4)
            use = gr.Button("Use as active model", elem_id="train-activate", scale=1)
        activated = gr.HTML(elem_id="train-activated")

    start_button.click(lambda *a: start(state, *a), [data, start_from, steps, batch_size], [message])
    cancel_button.click(lambda: cancel(state), None, [message])
    use.click(lambda p: activate(state, p), [trained], [activated])
    # the list follows new runs: refreshed on opening the tab and when a run ends, not only on a click
    tab.select(lambda: gr.update(choices=trained_models()), None, [trained], show_progress="hidden")
    job.change(lambda: gr.update(choices=trained_models()), None, [trained], show_progress="hidden")
    return {"job": job, "curve": curve, "log": log, "trained": trained,
            "models": lambda: gr.update(choices=trained_models())}
