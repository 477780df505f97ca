"""The contrastive trainer: one loop for PromptEmbedder, alignment-only adaptation and the LoRA baseline.

    batch (one task) -> query tokens + document tokens -> model -> InfoNCE -> AdamW step

What trains is the run's method (methods.py, named by `mode`): "prompter" (the Prompting LLM and the
alignment), "alignment" (only a new alignment) or "lora" (the baseline's adapters on the Embedding LLM).
The Embedding LLM's own weights never require grad.

Checkpoints (every save_every steps) hold the model (as save_pretrained writes it), the optimizer
state, the RNG states, the loss temperature and the data position, all in safetensors + JSON, so a
resumed run continues bit for bit where the interrupted one would have gone. Needs only torch,
transformers, peft and safetensors (no `datasets` on the GPU machine).
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from embedder.hardware import device_name
from embedder.model import SoftPrompt, TextPass

from .data import Record
from .dev_score import build_dev_set, dev_corpora, metric_label, score_dev_set, truncate_texts
from .errors import TrainingError
from .losses import InfoNCE
from .methods import METHODS, select_trainable
from .mixture import TaskMixture

MODES = tuple(METHODS)
LOG_FILE = "train_log.jsonl"
STATE_FILE = "trainer_state.json"
# settings a resumed run must share with the interrupted one, or it would not be the same run
RESUME_KEYS = ("mode", "max_steps", "batch_size", "grad_accum", "lr", "alignment_lr", "weight_decay",
               "warmup_steps", "min_lr_ratio", "temperature", "learnable_temperature", "hard_negatives",
               "query_length", "document_length", "tau_start", "tau_end", "seed", "data_fingerprint", "dtype",
               "task_weights", "text_reuse", "reuse_block")


@dataclass
class TrainConfig:
    output_dir: str
    mode: str = "prompter"
    max_steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-4  # the Prompting LLM's weights (or the LoRA baseline's adapters)
    alignment_lr: float = 1e-3  # the alignment is small and starts from scratch: it takes a larger step
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    max_grad_norm: float = 1.0
    temperature: float = 0.05  # InfoNCE
    learnable_temperature: bool = False
    hard_negatives: int = 1  # per record, from its "negatives"
    task_weights: dict[str, float] = field(default_factory=dict)  # TASK -> batches per epoch x this (default 1)
    query_length: int = 64  # tokens of text (the instruction, when written as text, comes on top)
    document_length: int = 256
    tau_start: float = 1.0  # Gumbel-softmax temperature of the relaxed generation, annealed
    tau_end: float = 0.3
    cached_text: bool = True  # suffix placement: text pass without autograd (same result, less memory)
    gradient_checkpointing: bool = False
    length_buckets: int = 1  # embed each side in N length-sorted chunks: less padding, more (small) passes
    text_reuse: int = 1  # > 1: each block of reuse_block batches gets this many optimizer passes over one text pass
    reuse_block: int = 4  # batches whose text KV caches are held at once (memory: see --text-reuse)
    bf16: bool = True  # autocast on CUDA (ignored on CPU)
    eval_every: int = 100
    eval_batches: int = 8
    # dev scores (measurement only, so not in RESUME_KEYS): retrieval over the dev records, STS Spearman
    dev_retrieval: bool = True
    dev_corpus: list[str] = field(default_factory=list)  # "TASK=PATH": a BEIR corpus added to TASK's dev corpus
    dev_sts: str | None = None  # an STS Benchmark dev file
    dev_max_queries: int | None = None  # per task (None: 200 on CUDA, 24 on the CPU): bounds each evaluation's cost
    dev_max_sts_pairs: int | None = None  # a fixed subset of the STS dev pairs (None: all on CUDA, 200 on the CPU)
    save_every: int = 200
    keep_checkpoints: int = 2
    seed: int = 0
    max_consecutive_skips: int = 20
    progress: bool = True
    data_fingerprint: str = ""  # set by the Trainer from its records: a resumed run must see the same data
    dtype: str = ""  # set by the Trainer: the frozen E's dtype ("fp32", "bf16"); a resumed run must use the same
    init_from: str = ""  # the trained model this run started from (train --init-from); "" for fresh adapters

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        for name in ("max_steps", "batch_size", "grad_accum", "query_length", "document_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("lr", "alignment_lr", "temperature", "max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, not {self.weight_decay}")
        if self.text_reuse < 1 or self.reuse_block < 1:
            raise ValueError("text_reuse and reuse_block must be at least 1")
        if self.text_reuse > 1 and self.grad_accum != 1:
            raise ValueError("text reuse steps through cached batches one at a time: use grad_accum 1")
        if not (self.tau_start > 0 and self.tau_end > 0):
            raise ValueError("tau_start and tau_end must be positive")
        dev_corpora(self.dev_corpus)


# ----- schedules ----------------------------------------------------------------------------
def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio; step counts from 0."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine


def count_trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


# ----- the trainer --------------------------------------------------------------------------
class Trainer:
    def __init__(self, model, records: list[Record], config: TrainConfig, dev_records: list[Record] | None = None,
                 on_step: Callable[[int, dict], None] | None = None):
        config.validate()
        if model.lora_merged:
            raise TrainingError("this model's LoRA adapter is merged into E for inference; to train it, load it "
                                "with PromptEmbedder.from_pretrained(..., merge_lora=False)")
        self.model, self.config, self.on_step = model, config, on_step
        self.output = Path(config.output_dir)
        config.data_fingerprint = data_fingerprint(records)
        config.dtype = model.dtype_name
        self.mixture = TaskMixture(records, config.batch_size, config.seed, config.hard_negatives,
                                   config.task_weights)
        self.device = model.device
        self.cuda = self.device.type == "cuda"
        self.dev_batches = self._dev_batches(dev_records or [])
        corpora = dev_corpora(config.dev_corpus)
        # the CPU's dev set is small enough to cost under a tenth of the training time at the defaults
        max_queries = config.dev_max_queries or (200 if self.cuda else 24)
        max_sts_pairs = config.dev_max_sts_pairs or (None if self.cuda else 200)
        self.dev_set = build_dev_set(dev_records or [], corpora, config.dev_sts, max_queries,
                                     retrieval=config.dev_retrieval, max_sts_pairs=max_sts_pairs,
                                     shorten=lambda texts: truncate_texts(model, texts, config.document_length))
        self.loss = InfoNCE(config.temperature, config.learnable_temperature).to(self.device)
        model.set_padding_side("right")  # left-padded rows gave NaN gradients (findings)
        self.method = METHODS[config.mode]()
        groups = select_trainable(model, config, self.method)
        if config.learnable_temperature:
            groups.append(dict(params=[self.loss.log_temperature], lr=config.alignment_lr, weight_decay=0.0,
                               base_lr=config.alignment_lr))
        self.trainable = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
        self.suffix_cached = (config.cached_text and model.prompter is not None
                              and model.config.placement == "suffix")
        if config.gradient_checkpointing and not self.suffix_cached:
            model.embedding.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.document_instruction = "" if model.config.text_mode else model.config.document_instruction
        if config.text_reuse > 1 and not self.suffix_cached:
            raise TrainingError("text reuse needs suffix placement with the cached text pass (the text pass must not "
                                "depend on anything that trains)")
        self._block_index, self._block = None, None
        self._overheads: dict[str, int] = {}

    def _dev_batches(self, records: list[Record]) -> list[list[Record]]:
        if not records:
            return []
        largest = max(sum(1 for r in records if r.task == t) for t in {r.task for r in records})
        size = min(self.config.batch_size, largest)
        if size < 2:
            return []
        return TaskMixture(records, size, seed=12345, hard_negatives=self.config.hard_negatives).epoch(0)[
            :self.config.eval_batches]

    def _train_mode(self) -> None:
        self.method.train_mode(self.model)
        if self.config.gradient_checkpointing and not self.suffix_cached:
            self.model.embedding.lm.train()  # HF checkpoints only in training mode; E has no dropout

    # ----- one batch ------------------------------------------------------------------------
    def _tokenize(self, texts: list[str], instruction: str, length: int) -> list[list[int]]:
        if instruction not in self._overheads:
            overhead = len(self.model.tokenize([""], instruction)[0]) if self.model.config.text_mode else 0
            self._overheads[instruction] = overhead
        limit = length + self._overheads[instruction]
        return [tokens[:limit] for tokens in self.model.tokenize(texts, instruction)]

    def _buckets(self, tokens: list[list[int]]) -> list[list[int]]:
        """Rows of E are independent, so length-sorted chunks give the same vectors with less padding."""
        buckets = min(self.config.length_buckets, len(tokens))
        if buckets <= 1:
            return [list(range(len(tokens)))]
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
        size = -(-len(order) // buckets)
        return [order[i:i + size] for i in range(0, len(order), size)]

    def _embed(self, tokens: list[list[int]], soft: SoftPrompt | None,
               text_passes: list[TextPass] | None = None) -> torch.Tensor:
        """E's pooled output; text_passes: this side's cached text passes (text reuse), one per bucket."""
        parts = self._buckets(tokens)
        if text_passes is not None:
            outputs = [self.model.embedding.soft_pass(text, soft, keep_text=True) for text in text_passes]
        else:
            outputs = [self.model.embed([tokens[i] for i in part], soft, self.suffix_cached) for part in parts]
        if len(parts) == 1:
            return outputs[0]
        out = torch.cat(outputs)
        order = torch.tensor([i for part in parts for i in part], device=out.device)
        return out[order.argsort()]

    def _batch_tokens(self, batch: list[Record]) -> tuple[list[list[int]], list[list[int]]]:
        documents = [r.positive for r in batch] + [n for r in batch for n in r.negatives]
        query_tokens = self._tokenize([r.query for r in batch], batch[0].instruction, self.config.query_length)
        document_tokens = self._tokenize(documents, self.document_instruction, self.config.document_length)
        return query_tokens, document_tokens

    def _cached_text(self, batch: list[Record]) -> tuple[tuple, tuple[list[TextPass], list[TextPass]]]:
        """Both sides' tokens and text passes of a batch, one pass per length bucket (what text reuse keeps)."""
        tokens = self._batch_tokens(batch)
        passes = tuple([self.model.embedding.text_pass([side[i] for i in part]) for part in self._buckets(side)]
                       for side in tokens)
        return tokens, passes

    def batch_loss(self, batch: list[Record], cached: tuple | None = None) -> tuple[torch.Tensor, float, int]:
        """(loss, in-batch accuracy, text tokens) for one single-task batch; cached: its tokens and text passes."""
        instruction = batch[0].instruction
        (query_tokens, document_tokens), (query_passes, document_passes) = cached or (
            self._batch_tokens(batch), (None, None))
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda and self.config.bf16 \
            else contextlib.nullcontext()
        with autocast:
            soft = self.method.soft_prompts(self.model, [instruction, self.document_instruction])
            queries = self._embed(query_tokens, soft[instruction], query_passes)
            docs = self._embed(document_tokens, soft[self.document_instruction], document_passes)
        loss = self.loss(queries.float(), docs.float())
        tokens = sum(map(len, query_tokens)) + sum(map(len, document_tokens))
        return loss, self.loss.accuracy(queries, docs), tokens

    def _reused_batch(self, step: int) -> tuple[list[Record], tuple]:
        """Text reuse: the batch of `step` and its cached text passes. Steps go through blocks of reuse_block
        batches, text_reuse passes over each block; the block is a function of the step alone, so a resumed
        run draws and encodes the same one again."""
        config = self.config
        block, offset = divmod(step, config.reuse_block * config.text_reuse)
        if self._block_index != block:
            self._block = None  # free the old caches before the new ones are made
            if self._block_index is None or block != self._block_index + 1:  # a resume: find the place once
                self._block_stream = self.mixture.stream(skip=block * config.reuse_block)
            batches = itertools.islice(self._block_stream, config.reuse_block)
            self._block = [(batch, self._cached_text(batch)) for batch in batches]
            self._block_index = block
        return self._block[offset % config.reuse_block]

    # ----- evaluation -----------------------------------------------------------------------
    def evaluate(self) -> dict:
        """Dev loss and in-batch top-1 accuracy on the dev batches, then the dev scores (RNG untouched)."""
        if not self.dev_batches and not self.dev_set:
            return {}
        devices = [self.device] if self.cuda else []
        metrics = {}
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            self.model.eval()
            if self.dev_batches:
                losses, accuracies = [], []
                for batch in self.dev_batches:
                    loss, accuracy, _ = self.batch_loss(batch)
                    losses.append(loss.item())
                    accuracies.append(accuracy)
                metrics.update(dev_loss=sum(losses) / len(losses), dev_accuracy=sum(accuracies) / len(accuracies))
            if self.dev_set:
                metrics.update(self.dev_scores())
            self._train_mode()
        return metrics

    def dev_scores(self) -> dict:
        """Retrieval and STS dev scores of the model as it would be saved now: at the relaxation temperature
        of its config (what a reloaded checkpoint uses), not the annealed training one."""
        start = time.perf_counter()
        with self.model.at_gumbel_tau(self.model.config.gumbel_tau):
            scores = score_dev_set(self.model, self.dev_set, self.config.batch_size)
        if self.model.prompter is not None:
            scores["dev_tau"] = self.model.config.gumbel_tau
        return {**scores, "dev_s": time.perf_counter() - start}

    # ----- the loop -------------------------------------------------------------------------
    def train(self, resume_from: str | os.PathLike | None = None) -> Path:
        config = self.config
        self.output.mkdir(parents=True, exist_ok=True)
        if resume_from is None:
            if latest_checkpoint(self.output) is not None or (self.output / LOG_FILE).exists():
                raise TrainingError(f"{self.output} already holds a training run; pass --resume to continue it "
                                    "or choose another --output")
            torch.manual_seed(config.seed)
            step, consumed, skipped = 0, 0, 0
            args = {**asdict(config), "device": device_name(self.device)}  # the model card's hardware line
            (self.output / "training_args.json").write_text(json.dumps(args, indent=2) + "\n")
        else:
            step, consumed, skipped = self._load_state(Path(resume_from))
            _truncate_log(self.output / LOG_FILE, step)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self._train_mode()
        stream = self.mixture.stream(skip=consumed)

        bar = tqdm(total=config.max_steps, initial=step, desc=f"train ({config.mode})", unit="step",
                   disable=not config.progress, dynamic_ncols=True)
        consecutive_skips = 0
        with open(self.output / LOG_FILE, "a", encoding="utf-8") as log:
            while step < config.max_steps:
                start = time.perf_counter()
                self.method.begin_step(self.model, step, config)
                factor = lr_factor(step, config)
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                total_loss, total_accuracy, tokens = 0.0, 0.0, 0
                for _ in range(config.grad_accum):
                    if config.text_reuse > 1:
                        loss, accuracy, batch_tokens = self.batch_loss(*self._reused_batch(step))
                        consumed = (self._block_index + 1) * config.reuse_block
                    else:
                        loss, accuracy, batch_tokens = self.batch_loss(next(stream))
                        consumed += 1
                    (loss / config.grad_accum).backward()
                    total_loss += loss.item() / config.grad_accum
                    total_accuracy += accuracy / config.grad_accum
                    tokens += batch_tokens
                grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, config.max_grad_norm).item()
                step += 1
                entry = {"step": step, "loss": round(total_loss, 6), "accuracy": round(total_accuracy, 4),
                         "lr": self.optimizer.param_groups[0]["lr"], "tau": round(self.model.gumbel_tau, 5),
                         "temperature": round(self.loss.temperature, 5), "grad_norm": round(grad_norm, 5)}
                if math.isfinite(total_loss) and math.isfinite(grad_norm):
                    self.optimizer.step()
                    consecutive_skips = 0
                else:  # NaN guard: this step's update would poison every weight; skip it, say so
                    skipped += 1
                    consecutive_skips += 1
                    entry["skipped"] = "non-finite loss" if not math.isfinite(total_loss) else "non-finite gradient"
                    bar.write(f"step {step}: {entry['skipped']}, update skipped ({skipped} so far)")
                    if consecutive_skips >= config.max_consecutive_skips:
                        raise TrainingError(f"{consecutive_skips} consecutive steps had non-finite values; "
                                            "lower --lr or check the data (the last checkpoint is intact)")
                self.optimizer.zero_grad(set_to_none=True)
                if self.cuda:
                    torch.cuda.synchronize(self.device)
                elapsed = time.perf_counter() - start
                entry.update(tokens_per_s=round(tokens / elapsed, 1), step_s=round(elapsed, 4),
                             peak_memory_bytes=peak_memory_bytes(self.device))
                if (self.dev_batches or self.dev_set) and (step % config.eval_every == 0 or step == config.max_steps):
                    entry.update({k: round(v, 5) for k, v in self.evaluate().items()})
                    if "dev/score" in entry:
                        bar.write(f"step {step}: " + dev_summary(entry))
                log.write(json.dumps(entry) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{total_loss:.4f}", lr=f"{entry['lr']:.2e}", tok_s=f"{entry['tokens_per_s']:.0f}")
                bar.update(1)
                if config.save_every and step % config.save_every == 0 and step < config.max_steps:
                    self._save_checkpoint(step, consumed, skipped)
                if self.on_step is not None:
                    self.on_step(step, entry)
        bar.close()
        self.model.eval()
        self.model.save_pretrained(self.output)
        return self.output

    # ----- checkpoints ----------------------------------------------------------------------
    def _save_checkpoint(self, step: int, consumed: int, skipped: int) -> Path:
        final = self.output / f"checkpoint-{step:06d}"
        tmp = self.output / f".checkpoint-{step:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        optimizer = self.optimizer.state_dict()
        tensors = {f"{index}.{key}": value.detach().cpu().contiguous()
                   for index, state in optimizer["state"].items() for key, value in state.items()}
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        extra = {"loss.log_temperature": self.loss.log_temperature.detach().cpu().reshape(1),
                 "rng.cpu": torch.get_rng_state()}
        if self.cuda:
            extra["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        save_file(extra, str(tmp / "trainer.safetensors"))
        param_groups = [{k: v for k, v in g.items()} for g in optimizer["param_groups"]]
        state = {"step": step, "batches_consumed": consumed, "skipped_steps": skipped,
                 "config": asdict(self.config), "param_groups": param_groups}
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in sorted(self.output.glob("checkpoint-*"))[:-self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _load_state(self, checkpoint: Path) -> tuple[int, int, int]:
        try:
            state = json.loads((checkpoint / STATE_FILE).read_text())
            tensors = load_file(str(checkpoint / "optimizer.safetensors"))
            extra = load_file(str(checkpoint / "trainer.safetensors"))
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{checkpoint} is not a complete training checkpoint: {exc}") from exc
        saved, current = state["config"], asdict(self.config)
        # runs from before these settings existed: no task weights, no text reuse, E as that version ran it
        for key, default in (("dtype", checkpoint_dtype(checkpoint)), ("task_weights", {}), ("text_reuse", 1),
                             ("reuse_block", 4)):
            saved.setdefault(key, default)
        changed = [f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in RESUME_KEYS if saved.get(k) != current[k]]
        if changed:
            raise TrainingError(f"cannot resume {checkpoint} with different settings ({'; '.join(changed)})")
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for name, value in tensors.items():
            index, key = name.split(".", 1)
            per_param.setdefault(int(index), {})[key] = value
        self.optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
        self.loss.log_temperature.data.copy_(extra["loss.log_temperature"].reshape(()))
        torch.set_rng_state(extra["rng.cpu"])
        if self.cuda and "rng.cuda" in extra:
            torch.cuda.set_rng_state(extra["rng.cuda"], self.device)
        return state["step"], state["batches_consumed"], state["skipped_steps"]


def dev_summary(entry: dict) -> str:
    """One line: 'dev/score 0.4210 | beir:scifact ndcg@10 0.5120 recall@10 0.7000 | sts spearman 0.3300'."""
    groups: dict[str, list[str]] = {}
    for key, value in entry.items():
        if key.startswith("dev/") and key != "dev/score":
            task, metric = metric_label(key)
            groups.setdefault(task, []).append(f"{metric} {value:.4f}")
    return " | ".join([f"dev/score {entry['dev/score']:.4f}"] + [f"{t} {' '.join(m)}" for t, m in groups.items()])


def data_fingerprint(records: list[Record]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(record.to_json().encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def latest_checkpoint(output: Path) -> Path | None:
    checkpoints = sorted(p for p in Path(output).glob("checkpoint-*") if (p / STATE_FILE).exists())
    return checkpoints[-1] if checkpoints else None


def checkpoint_dtype(checkpoint: Path) -> str:
    """The frozen E's dtype of a run: as recorded, or for a run from before dtypes were recorded, what that
    version used: bf16 on CUDA (its checkpoints hold a CUDA RNG state), fp32 on the CPU."""
    state = json.loads((Path(checkpoint) / STATE_FILE).read_text())
    if state["config"].get("dtype"):
        return state["config"]["dtype"]
    return "bf16" if "rng.cuda" in load_file(str(Path(checkpoint) / "trainer.safetensors")) else "fp32"


def saved_config(checkpoint: Path) -> TrainConfig:
    raw = json.loads((checkpoint / STATE_FILE).read_text())["config"]
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in raw.items() if k in known})


def read_log(path: str | os.PathLike) -> list[dict]:
    """The entries of a train_log.jsonl; a damaged line is an error naming the file and line."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError as exc:
                raise TrainingError(f"{path}:{number}: not JSON ({exc})") from exc
    return entries


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines the interrupted run wrote after the checkpoint we resume from, and a line torn by the
    interruption (the kill can land mid-write); a damaged line before the checkpoint's step is an error."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            entry_step = json.loads(line).get("step", 0)
        except ValueError:
            if number == len(lines):
                break  # torn by the interruption: that step is redone anyway
            raise TrainingError(f"{path}:{number}: not JSON; the log is damaged before the last line")
        if entry_step <= step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
