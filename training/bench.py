"""The training benchmark: LoRA on E vs PromptEmbedder (prefix, suffix) at one shape, back to back.

Every configuration trains on the same synthetic token ids (batch B queries of Lq tokens + B
positives of Ld tokens), with the same loss, optimizer, autocast, attention kernel and compile
setting; only the method differs:

- `lora`: PEFT LoRA (rank r) on every attention and MLP projection of E; the instruction is text
  before each query (Li synthetic tokens on top of Lq), documents are plain text.
- `pe-prefix`: the Prompting LLM writes K soft tokens, aligned and placed before the text;
  the backward pass runs through E over the whole sequence.
- `pe-suffix`: the soft tokens after the text, the text run without autograd with a KV cache
  (the model's cached two-pass path): the backward pass covers only the K soft positions.
- `forward`: not a training step: E's no-grad forward over the same text tokens (no soft tokens), the
  floor a suffix step is measured against (its cost beyond one forward is P, the K soft positions and
  the optimizer).

Each configuration runs at every requested dtype of the frozen E (trainable weights stay fp32) and
document length; ratios to LoRA are taken within the same dtype and length.

Backbones are built from their configuration with random weights (speed and memory do not depend
on the values) and fed synthetic ids, so the benchmark needs no weights and no tokenizer.
"""
from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import statistics
import threading
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import torch

from embedder.hardware import device_name
from embedder.model import (EmbeddingLLM, PromptEmbedder, PromptEmbedderConfig, PromptingLLM, add_lora, base_decoder,
                            new_alignment)

from .losses import InfoNCE
from .methods import select_trainable
from .trainer import TrainConfig, count_trainable, read_log

CONFIGS = ("lora", "pe-prefix", "pe-suffix", "forward")
# the architectures of the real backbones (config.json values), and the test presets
SHAPES = {
    "qwen2.5-0.5b": dict(arch="qwen2", hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864, vocab_size=151936),
    "smollm2-135m": dict(arch="llama", hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, intermediate_size=1536, vocab_size=49152),
    "tiny-qwen2": dict(arch="qwen2", hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=96, vocab_size=512),
    "tiny-llama": dict(arch="llama", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=64, vocab_size=512),
}
PRESETS = {  # preset: (Embedding LLM shape, Prompting LLM shape)
    "qwen2.5-0.5b": ("qwen2.5-0.5b", "smollm2-135m"),
    "smollm2-135m": ("smollm2-135m", "smollm2-135m"),
    "tiny": ("tiny-qwen2", "tiny-llama"),
}
ATTENTION = {"eager": "eager", "sdpa": "sdpa", "flash": "flash_attention_2"}


class SyntheticTokenizer:
    """Just enough tokenizer for the Prompting LLM and the layout: ids from a hash of each word."""

    padding_side = "right"

    def __init__(self, vocab_size: int):
        self.vocab_size, self.pad_token_id, self.eos_token_id = vocab_size, 0, 0

    def ids(self, text: str) -> list[int]:
        return [1 + zlib.crc32(word.encode()) % (self.vocab_size - 1) for word in text.split()] or [1]

    def __call__(self, text: str, return_tensors: str | None = None, **_):
        ids = self.ids(text)
        return SimpleNamespace(input_ids=torch.tensor([ids]) if return_tensors == "pt" else ids)


def available_attention() -> list[str]:
    names = ["eager", "sdpa"]
    if importlib.util.find_spec("flash_attn") is not None:
        names.append("flash")
    return names


def random_lm(shape: str, attention: str, device: torch.device):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    config = (Qwen2Config if arch == "qwen2" else LlamaConfig)(
        **spec, tie_word_embeddings=True, max_position_embeddings=4096, pad_token_id=0, eos_token_id=0,
        bos_token_id=None)
    if attention not in available_attention():
        raise ValueError(f"attention '{attention}' is not available here (available: {', '.join(available_attention())})")
    config._attn_implementation = ATTENTION[attention]
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def build(name: str, preset: str, device: torch.device, attention: str, soft_tokens: int = 5,
          lora_rank: int = 16, prompter_weights: str = "lora", dtype: str = "auto") -> PromptEmbedder:
    e_shape, p_shape = PRESETS[preset]
    e_lm = random_lm(e_shape, attention, device)
    e_tokenizer = SyntheticTokenizer(SHAPES[e_shape]["vocab_size"])
    if name in ("lora", "forward"):  # forward: plain E, text mode
        lora = {"r": lora_rank, "lora_alpha": 2 * lora_rank} if name == "lora" else None
        config = PromptEmbedderConfig(embedding_backbone=f"{e_shape}-shape", prompting_backbone=None,
                                      embedding_lora=lora, document_instruction="")
        lm = add_lora(e_lm, lora) if lora else e_lm
        embedding = EmbeddingLLM(lm, e_tokenizer, config.embedding_backbone, "suffix", "last")
        model = PromptEmbedder(config, embedding, None, None)
    else:
        placement = name.removeprefix("pe-")
        config = PromptEmbedderConfig(embedding_backbone=f"{e_shape}-shape", prompting_backbone=f"{p_shape}-shape",
                                      num_soft_tokens=soft_tokens, placement=placement,
                                      prompter_weights=prompter_weights)
        p_lm = random_lm(p_shape, attention, device)
        if prompter_weights == "lora":
            p_lm = add_lora(p_lm, {})
        prompter = PromptingLLM(p_lm, SyntheticTokenizer(SHAPES[p_shape]["vocab_size"]), soft_tokens, "hidden", False)
        embedding = EmbeddingLLM(e_lm, e_tokenizer, config.embedding_backbone, placement, "last")
        model = PromptEmbedder(config, embedding, prompter, new_alignment(prompter, embedding))
    return model.to_device(device, dtype)


class PeakRSS:
    """Highest resident set size while the block runs (sampled every 5 ms; CPU runs)."""

    def __enter__(self):
        import psutil

        self._process, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def run_config(name: str, preset: str, device: torch.device, batch_size: int, query_length: int,
               document_length: int, instruction_length: int, steps: int, warmup: int, attention: str,
               compile: bool, soft_tokens: int, lora_rank: int, prompter_weights: str, dtype: str = "auto") -> dict:
    torch.manual_seed(0)
    model = build(name, preset, device, attention, soft_tokens, lora_rank, prompter_weights, dtype)
    if name != "forward":
        groups = select_trainable(model, TrainConfig(output_dir="", mode="lora" if name == "lora" else "prompter"))
        params = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(groups)
    loss_fn = InfoNCE(0.05)
    if compile:  # the transformer layers of every LLM in the configuration
        lms = [model.embedding.lm] + ([model.prompter.lm] if model.prompter is not None else [])
        for lm in lms:
            for layer in base_decoder(lm).layers:
                layer.compile()
    vocab = SHAPES[PRESETS[preset][0]]["vocab_size"]
    generator = torch.Generator().manual_seed(0)
    queries = torch.randint(1, vocab, (batch_size, query_length), generator=generator).tolist()
    documents = torch.randint(1, vocab, (batch_size, document_length), generator=generator).tolist()
    instruction = " ".join(f"w{i}" for i in range(instruction_length))  # P reads it: instruction_length tokens
    document_instruction = " ".join(f"d{i}" for i in range(max(1, instruction_length // 2)))
    if name == "lora":  # the instruction as text before every query; documents plain
        prefix = torch.randint(1, vocab, (instruction_length,), generator=generator).tolist()
        queries = [prefix + q for q in queries]
    cached = name == "pe-suffix"
    cuda = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    model.train()

    def forward() -> float:
        start = time.perf_counter()
        with torch.inference_mode(), autocast():
            model.embedding(queries, None)
            model.embedding(documents, None)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def train_step() -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast():  # as the trainer does it: both prompts from one pass of P
            soft = model.soft_prompts([instruction, document_instruction])
            q = model.embed(queries, soft[instruction], cached)
            d = model.embed(documents, soft[document_instruction], cached)
        loss = loss_fn(q.float(), d.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step = forward if name == "forward" else train_step
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss = PeakRSS() if not cuda else contextlib.nullcontext()
    with rss:
        start = time.perf_counter()
        for _ in range(warmup):
            step()
        warmup_s = time.perf_counter() - start
        times = [step() for _ in range(steps)]
    peak = torch.cuda.max_memory_allocated() if cuda else rss.peak
    median = statistics.median(times)
    text_tokens = batch_size * (query_length + document_length)
    e_tokens = sum(map(len, queries)) + sum(map(len, documents)) + (
        0 if name in ("lora", "forward") else 2 * batch_size * soft_tokens)
    result = {"name": name, "dtype": model.dtype_name, "document_length": document_length, "median_step_s": round(median, 5), "tokens_per_s": round(text_tokens / median, 1),
              "peak_memory_bytes": int(peak), "trainable_params": count_trainable(model) if name != "forward" else 0,
              "e_tokens_per_step": e_tokens, "warmup_s": round(warmup_s, 3),
              "step_times_s": [round(t, 5) for t in times]}
    del model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    if compile:
        torch._dynamo.reset()
    return result


def bench_train(preset: str = "qwen2.5-0.5b", configs: tuple[str, ...] = CONFIGS[:3], batch_size: int = 64,
                query_length: int = 64, document_lengths: tuple[int, ...] = (256,), instruction_length: int = 16,
                steps: int = 10, warmup: int = 3, attention: str = "sdpa", compile: bool = False,
                soft_tokens: int = 5, lora_rank: int = 16, prompter_weights: str = "lora",
                device: str | None = None, dtypes: tuple[str, ...] = ("auto",), log=print,
                on_result=None) -> dict:
    """Every configuration at every (dtype, document length), back to back; each row carries its ratios to
    LoRA (speed-up, memory) and to the no-grad forward (step cost) at the same dtype and length.

    on_result(report so far) runs after every configuration: a long CPU run that is killed (out of memory,
    say) keeps what it measured."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"unknown configuration '{name}' (known: {', '.join(CONFIGS)})")
    import transformers

    def report(results: list[dict]) -> dict:
        return {
            "device": device_name(device), "backbone": PRESETS[preset][0], "prompting_backbone": PRESETS[preset][1],
            "weights": "random", "dtypes": sorted({r["dtype"] for r in results}),
            "precision": "frozen E in the row's dtype (bf16 autocast on CUDA), P, alignment and adapters fp32",
            "batch_size": batch_size, "query_length": query_length, "document_lengths": list(document_lengths),
            "instruction_length": instruction_length, "soft_tokens": soft_tokens, "lora_rank": lora_rank,
            "prompter_weights": prompter_weights, "steps": steps, "warmup_steps": warmup, "attention": attention,
            "compile": compile, "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
            "peak_memory": "torch.cuda.max_memory_allocated" if device.type == "cuda" else
            "peak process RSS while the configuration ran (sampled; includes what earlier configurations left)",
            "configs": results,
        }

    results = []
    for dtype in dtypes:
        for document_length in document_lengths:
            group = []
            for name in configs:
                log(f"[bench train] {name}, {dtype}, {document_length} document tokens ...")
                group.append(run_config(name, preset, device, batch_size, query_length, document_length,
                                        instruction_length, steps, warmup, attention, compile, soft_tokens,
                                        lora_rank, prompter_weights, dtype))
                _add_ratios(group)
                if on_result is not None:
                    on_result(report(results + group))
            results += group
    return report(results)


def _add_ratios(group: list[dict]) -> None:
    by_name = {r["name"]: r for r in group}
    lora, forward = by_name.get("lora"), by_name.get("forward")
    for r in group:
        if lora is not None and r["name"] not in ("lora", "forward"):
            r["speedup_vs_lora"] = round(lora["median_step_s"] / r["median_step_s"], 3)
            r["memory_vs_lora"] = round(r["peak_memory_bytes"] / lora["peak_memory_bytes"], 3)
        if forward is not None and r["name"] != "forward":
            r["cost_vs_forward"] = round(r["median_step_s"] / forward["median_step_s"], 3)


def format_table(report: dict) -> str:
    lines = [f"device: {report['device']}; E: {report['backbone']} shape, P: {report['prompting_backbone']} shape, "
             f"{report['weights']} weights; batch {report['batch_size']} x ({report['query_length']} + D) tokens; "
             f"attention {report['attention']}, compile {report['compile']}",
             "", "| config | dtype | D | median step (s) | text tokens/s | peak memory (GB) | trainable params | "
             "vs LoRA: speed | memory | vs no-grad forward |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["configs"]:
        def ratio(key: str) -> str:
            return f"{r[key]:.2f}x" if key in r else "-"
        lines.append(f"| {r['name']} | {r['dtype']} | {r['document_length']} | {r['median_step_s']:.3f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['peak_memory_bytes'] / 1e9:.2f} | {r['trainable_params']:,} | "
                     f"{ratio('speedup_vs_lora')} | {ratio('memory_vs_lora')} | {ratio('cost_vs_forward')} |")
    return "\n".join(lines)


def write_report(report: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def convergence(log_path, metric: str = "dev_accuracy", fraction: float = 0.95) -> dict:
    """From a train_log.jsonl: the first step (and elapsed training seconds) whose dev metric reaches
    `fraction` of the run's final value; compares alignment-only runs with training from scratch."""
    entries = read_log(log_path)
    points, elapsed = [], 0.0
    for entry in entries:
        elapsed += entry.get("step_s", 0.0)
        if metric in entry:
            points.append((entry["step"], elapsed, entry[metric]))
    if not points:
        raise ValueError(f"{log_path} has no '{metric}' entries (was a dev set given?)")
    final = points[-1][2]
    lower_is_better = metric.endswith("loss")
    reached = next(p for p in points if (p[2] <= final / fraction if lower_is_better else p[2] >= fraction * final))
    return {"log": str(log_path), "metric": metric, "final": final, "fraction": fraction,
            "step": reached[0], "train_seconds": round(reached[1], 2), "total_steps": entries[-1]["step"]}
