"""The trainer on tiny presets: learning, exact resume, what each mode may change, NaN guard, bench."""
from __future__ import annotations

import json
import random

import pytest
import torch

from embedder import PromptEmbedder
from embedder.checkpoint import trained_state
from embedder.model import PromptEmbedderConfig
from training.align import attach_backbone, changed_groups
from training.data import Record
from training.errors import TrainingError
from training.lora_baseline import build_lora_model, lora_config
from training.trainer import TrainConfig, Trainer

INSTRUCTION = "Retrieve semantically similar text."
WORDS = "cat dog park search index query vector python mat document answer claim".split()


pytestmark = pytest.mark.usefixtures("one_thread")


def fixed_records(n: int = 16, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        query = " ".join(rng.choice(WORDS) for _ in range(4)) + f" {i}"
        records.append(Record(query, f"{query} {rng.choice(WORDS)}", [], INSTRUCTION, "toy"))
    return records


def pe_model(**config) -> PromptEmbedder:
    torch.manual_seed(0)
    settings = dict(prompter_weights="lora", prompter_lora={"r": 4, "lora_alpha": 8})
    return PromptEmbedder.from_config(PromptEmbedderConfig(**{**settings, **config})).to_device("cpu")


def train_config(tmp_path, name: str, **overrides) -> TrainConfig:
    settings = dict(max_steps=12, batch_size=4, warmup_steps=2, lr=1e-3, alignment_lr=1e-2, save_every=0,
                    eval_every=1000, progress=False, query_length=16, document_length=16)
    return TrainConfig(str(tmp_path / name), **{**settings, **overrides})


def snapshot(model) -> dict:
    return {g: {k: v.clone() for k, v in t.items()} for g, t in trained_state(model).items()}


def test_a_few_dozen_steps_lower_the_loss(tmp_path):
    records = fixed_records()
    model = pe_model(prompter_weights="full")
    trainer = Trainer(model, records, train_config(tmp_path, "run", max_steps=30, batch_size=8, warmup_steps=3),
                      dev_records=records)
    before = trainer.evaluate()["dev_loss"]
    trainer.train()
    after = trainer.evaluate()["dev_loss"]
    assert after < 0.7 * before, (before, after)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, 31))
    assert {"loss", "lr", "tokens_per_s", "peak_memory_bytes", "tau"} <= set(log[0])
    assert log[0]["lr"] < log[3]["lr"] and log[-1]["lr"] < log[3]["lr"]  # warm-up, then decay
    assert log[-1]["tau"] < log[0]["tau"]  # annealed relaxation
    reloaded = PromptEmbedder.from_pretrained(tmp_path / "run", device="cpu")
    assert reloaded.fingerprint == model.fingerprint


@pytest.mark.parametrize("reuse", [{}, {"text_reuse": 2, "reuse_block": 3}], ids=["fresh", "text-reuse"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, reuse):
    records = fixed_records(24)
    straight = pe_model()
    config = lambda name, **extra: train_config(tmp_path, name, **reuse, **extra)  # noqa: E731
    Trainer(straight, records, config("straight", save_every=4), dev_records=records[:8]).train()

    def interrupt(step, _entry):
        if step == 7:
            raise KeyboardInterrupt

    model = pe_model()
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, records, config("resumed", save_every=4), dev_records=records[:8],
                on_step=interrupt).train()
    checkpoint = tmp_path / "resumed" / "checkpoint-000004"
    assert (checkpoint / "trainer_state.json").exists()
    with pytest.raises(TrainingError, match="already holds a training run"):
        Trainer(pe_model(), records, config("resumed")).train()
    resumed = PromptEmbedder.from_pretrained(checkpoint, device="cpu")
    Trainer(resumed, records, config("resumed", save_every=4), dev_records=records[:8]).train(
        resume_from=checkpoint)
    expected, got = snapshot(straight), snapshot(resumed)
    assert expected.keys() == got.keys()
    for group in expected:
        for key in expected[group]:
            assert torch.equal(expected[group][key], got[group][key]), f"{group}/{key}"
    assert snapshot(pe_model())["prompter"].keys() == expected["prompter"].keys()
    log = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    assert log == list(range(1, 13))  # the interrupted run's steps 5-7 were replaced, not duplicated


def test_text_reuse_steps_through_blocks_of_cached_batches(tmp_path):
    records = fixed_records(40)
    trainer = Trainer(pe_model(), records, train_config(tmp_path, "run", text_reuse=2, reuse_block=3))
    fresh = list(trainer.mixture.epoch(0))
    seen = [trainer._reused_batch(step)[0] for step in range(12)]
    assert seen == fresh[0:3] * 2 + fresh[3:6] * 2  # each block of 3 batches, twice, then the next block
    batch, passes = trainer._reused_batch(0)
    trainer.model.eval()
    with torch.no_grad():  # a cached text pass serves many soft passes, each equal to a fresh two-pass step
        first, _, _ = trainer.batch_loss(batch, passes)
        again, _, _ = trainer.batch_loss(batch, passes)
        fresh_loss, _, _ = trainer.batch_loss(batch)
    assert first.item() == again.item() == pytest.approx(fresh_loss.item(), abs=1e-6)
    with pytest.raises(ValueError, match="grad_accum"):
        train_config(tmp_path, "bad", text_reuse=2, grad_accum=2).validate()
    with pytest.raises(TrainingError, match="suffix"):
        Trainer(pe_model(placement="prefix"), records, train_config(tmp_path, "prefix", text_reuse=2))


def test_resume_survives_a_log_line_torn_by_the_kill(tmp_path):
    records = fixed_records(24)
    Trainer(pe_model(), records, train_config(tmp_path, "run", max_steps=4, save_every=2)).train()
    log = tmp_path / "run" / "train_log.jsonl"
    log.write_text(log.read_text() + '{"step": 5, "loss": 0.1')  # killed mid-write
    checkpoint = tmp_path / "run" / "checkpoint-000002"
    resumed = PromptEmbedder.from_pretrained(checkpoint, device="cpu")
    Trainer(resumed, records, train_config(tmp_path, "run", max_steps=4, save_every=2)).train(resume_from=checkpoint)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]


@pytest.mark.parametrize("setting", [{"lr": float("nan")}, {"lr": 0.0}, {"alignment_lr": float("inf")},
                                     {"temperature": -1.0}, {"weight_decay": float("nan")}])
def test_non_finite_or_non_positive_rates_are_refused_before_training(tmp_path, setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        train_config(tmp_path, "run", **setting).validate()


def test_resume_refuses_other_settings_or_data(tmp_path):
    records = fixed_records(24)
    Trainer(pe_model(), records, train_config(tmp_path, "run", max_steps=4, save_every=2)).train()
    checkpoint = tmp_path / "run" / "checkpoint-000002"
    with pytest.raises(TrainingError, match="max_steps"):
        Trainer(pe_model(), records, train_config(tmp_path, "run", max_steps=8)).train(resume_from=checkpoint)
    with pytest.raises(TrainingError, match="data_fingerprint"):
        Trainer(pe_model(), records[:20], train_config(tmp_path, "run", max_steps=4)).train(resume_from=checkpoint)


def test_alignment_only_changes_only_the_new_alignment(tmp_path):
    records = fixed_records()
    model = pe_model()
    Trainer(model, records, train_config(tmp_path, "base", max_steps=3)).train()
    before = snapshot(model)
    model = attach_backbone(PromptEmbedder.from_pretrained(tmp_path / "base", device="cpu"), "tiny-qwen2")
    fresh = snapshot(model)
    assert set(fresh) == {"prompter", "alignment-tiny-llama", "alignment-tiny-qwen2"}
    Trainer(model, records, train_config(tmp_path, "aligned", mode="alignment", max_steps=4)).train()
    after = snapshot(model)
    assert changed_groups(fresh, after) == ["alignment-tiny-qwen2"]
    assert changed_groups({g: before[g] for g in ("prompter", "alignment-tiny-llama")},
                          {g: after[g] for g in ("prompter", "alignment-tiny-llama")}) == []
    # the checkpoint now runs on either backbone
    old = PromptEmbedder.from_pretrained(tmp_path / "aligned", backbone="tiny-llama", device="cpu")
    new = PromptEmbedder.from_pretrained(tmp_path / "aligned", device="cpu")
    assert new.embedding.name == "tiny-qwen2" and old.embedding.name == "tiny-llama"
    assert sorted(new.config.aligned_backbones) == ["tiny-llama", "tiny-qwen2"]
    original = PromptEmbedder.from_pretrained(tmp_path / "base", device="cpu")
    assert (old.encode(["a cat"]) == original.encode(["a cat"])).all()


def test_lora_baseline_changes_only_its_adapters(tmp_path):
    records = fixed_records()
    model = build_lora_model(lora_config("tiny-llama", rank=4), device="cpu")
    base = {k: v.clone() for k, v in model.embedding.lm.state_dict().items()}
    Trainer(model, records, train_config(tmp_path, "lora", mode="lora", max_steps=4)).train()
    after = model.embedding.lm.state_dict()
    changed = {k for k in base if not torch.equal(base[k], after[k])}
    assert changed and all("lora_" in k for k in changed)
    assert any("lora_B" in k for k in changed)
    assert not any(p.requires_grad for n, p in model.embedding.lm.named_parameters() if "lora_" not in n)
    reloaded = PromptEmbedder.from_pretrained(tmp_path / "lora", device="cpu")
    assert reloaded.config.text_mode and reloaded.config.embedding_lora
    texts = ["the cat sat", "a dog runs"]
    assert torch.allclose(torch.from_numpy(reloaded.encode(texts)), torch.from_numpy(model.encode(texts)), atol=1e-6)
    # loaded for inference, the adapter is folded into E: the same vectors and fingerprint, other weights
    assert reloaded.lora_merged and not model.lora_merged
    assert reloaded.fingerprint == model.fingerprint
    q_proj = "q_proj.base_layer.weight"
    merged_weight = next(v for k, v in reloaded.embedding.lm.state_dict().items() if k.endswith(q_proj))
    trained_weight = next(v for k, v in after.items() if k.endswith(q_proj))
    assert not torch.equal(merged_weight, trained_weight)


def test_a_merged_lora_baseline_refuses_to_train_and_loads_unmerged_to_train(tmp_path):
    records = fixed_records()
    model = build_lora_model(lora_config("tiny-llama", rank=4), device="cpu")
    Trainer(model, records, train_config(tmp_path, "lora", mode="lora", max_steps=2)).train()
    merged = PromptEmbedder.from_pretrained(tmp_path / "lora", device="cpu")
    with pytest.raises(TrainingError, match="merge_lora=False"):
        Trainer(merged, records, train_config(tmp_path, "again", mode="lora", max_steps=1))
    unmerged = PromptEmbedder.from_pretrained(tmp_path / "lora", device="cpu", merge_lora=False)
    assert not unmerged.lora_merged
    before = {n: p.detach().clone() for n, p in unmerged.embedding.lm.named_parameters() if "lora_B" in n}
    Trainer(unmerged, records, train_config(tmp_path, "again", mode="lora", max_steps=1)).train()
    after = dict(unmerged.embedding.lm.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_prompter_mode_never_trains_the_embedding_llm(tmp_path):
    model = pe_model(prompter_weights="full")
    e_before = {k: v.clone() for k, v in model.embedding.lm.state_dict().items()}
    Trainer(model, fixed_records(), train_config(tmp_path, "run", max_steps=2)).train()
    assert all(torch.equal(v, model.embedding.lm.state_dict()[k]) for k, v in e_before.items())


def test_non_finite_step_is_skipped_and_reported(tmp_path):
    model = pe_model()
    trainer = Trainer(model, fixed_records(), train_config(tmp_path, "run", max_steps=3))
    original = trainer.batch_loss
    calls = []

    def poisoned(batch):
        loss, accuracy, tokens = original(batch)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 2 else loss), accuracy, tokens

    trainer.batch_loss = poisoned
    snapshots = []
    trainer.on_step = lambda step, entry: snapshots.append(snapshot(model))
    trainer.train()
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e.get("skipped") for e in log] == [None, "non-finite loss", None]
    assert changed_groups(snapshots[0], snapshots[1]) == []
    assert all(torch.isfinite(t).all() for g in snapshots[2].values() for t in g.values())


def test_bench_runs_on_cpu_with_tiny_presets(tmp_path, capsys):
    from app.cli import main

    out = tmp_path / "bench.json"
    code = main(["bench", "train", "--preset", "tiny", "--batch-size", "4", "--query-length", "8",
                 "--document-length", "16", "24", "--dtypes", "fp32", "bf16", "--configs",
                 "lora,pe-prefix,pe-suffix,forward", "--steps", "2", "--warmup", "1", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["weights"] == "random" and report["backbone"] == "tiny-qwen2"
    grid = [(c["name"], c["dtype"], c["document_length"]) for c in report["configs"]]
    assert grid == [(name, dtype, length) for dtype in ("fp32", "bf16") for length in (16, 24)
                    for name in ("lora", "pe-prefix", "pe-suffix", "forward")]
    for config in report["configs"]:
        assert config["median_step_s"] > 0 and config["tokens_per_s"] > 0 and config["peak_memory_bytes"] > 0
        trains = config["name"] != "forward"
        assert (config["trainable_params"] > 0) == trains
        assert ("speedup_vs_lora" in config) == (config["name"] in ("pe-prefix", "pe-suffix"))
        assert ("cost_vs_forward" in config) == trains
    assert "| pe-suffix | bf16 | 24 |" in capsys.readouterr().out


@pytest.mark.parametrize("source", ["hidden", "embedding"])
def test_batched_soft_prompts_equal_one_at_a_time(source):
    model = pe_model(soft_token_source=source).eval()
    instructions = [INSTRUCTION, "Represent this document for retrieval.", "x"]  # different lengths
    with torch.no_grad():
        batched = model.soft_prompts(instructions)
        for text in instructions:
            assert torch.allclose(batched[text].inputs, model.soft_prompt(text).inputs, atol=1e-5)


def test_convergence_reads_the_dev_curve(tmp_path):
    from training.bench import convergence

    log = tmp_path / "train_log.jsonl"
    entries = [{"step": 1, "step_s": 1.0, "dev_accuracy": 0.2}, {"step": 2, "step_s": 1.0},
               {"step": 3, "step_s": 1.0, "dev_accuracy": 0.96}, {"step": 4, "step_s": 1.0, "dev_accuracy": 1.0}]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    result = convergence(log)
    assert (result["step"], result["train_seconds"], result["final"]) == (3, 3.0, 1.0)


def test_length_buckets_give_the_same_vectors(tmp_path):
    model = pe_model().eval()
    records = fixed_records(8)
    records[0] = Record("a much longer query " * 5, "and a much longer positive " * 6, [], INSTRUCTION, "toy")
    trainer = Trainer(model, records, train_config(tmp_path, "run", batch_size=8, length_buckets=3,
                                                   query_length=64, document_length=64))
    tokens = trainer._tokenize([r.positive for r in records], INSTRUCTION, 64)
    with torch.no_grad():
        soft = model.soft_prompt(INSTRUCTION)
        bucketed = trainer._embed(tokens, soft)
        trainer.config.length_buckets = 1
        assert torch.allclose(bucketed, trainer._embed(tokens, soft), atol=1e-5)


def test_saved_model_runs_at_the_annealed_temperature_and_alignment_keeps_it(tmp_path):
    records = fixed_records()
    model = pe_model()
    Trainer(model, records, train_config(tmp_path, "base", max_steps=3, tau_start=1.0, tau_end=0.3)).train()
    model.eval()
    reloaded = PromptEmbedder.from_pretrained(tmp_path / "base", device="cpu")
    assert reloaded.config.gumbel_tau == pytest.approx(0.3)
    # the run records what it ran on (the model card's hardware line)
    assert json.loads((tmp_path / "base" / "training_args.json").read_text())["device"].startswith("CPU (")
    # the in-process model at the end of training and the checkpoint are the same embedder
    model.set_gumbel_tau(0.3)
    assert torch.allclose(torch.as_tensor(model.encode(["a cat"])), torch.as_tensor(reloaded.encode(["a cat"])))
    # alignment-only training leaves P, and the temperature P's output was computed at, as they were
    aligned = attach_backbone(reloaded, "tiny-qwen2")
    Trainer(aligned, records, train_config(tmp_path, "aligned", mode="alignment", max_steps=3, tau_start=1.0,
                                           tau_end=0.1)).train()
    log = [json.loads(line) for line in (tmp_path / "aligned" / "train_log.jsonl").read_text().splitlines()]
    assert {entry["tau"] for entry in log if "tau" in entry} == {0.3}
    assert PromptEmbedder.from_pretrained(tmp_path / "aligned", device="cpu").config.gumbel_tau == pytest.approx(0.3)


def test_deep_alignment_starts_as_the_plain_method_trains_and_moves_with_the_alignment(tmp_path):
    records = fixed_records()
    plain, deep = pe_model(), pe_model(deep_rank=4)
    assert (plain.encode(["a cat"]) == deep.encode(["a cat"])).all()  # zero-initialised offsets: no change
    Trainer(deep, records, train_config(tmp_path, "deep", max_steps=3)).train()
    assert deep.alignment.deep_up.abs().sum() > 0  # the per-layer offsets were trained
    reloaded = PromptEmbedder.from_pretrained(tmp_path / "deep", device="cpu")
    deep.eval()
    assert torch.allclose(torch.as_tensor(deep.encode(["a cat"])), torch.as_tensor(reloaded.encode(["a cat"])))
    # the same vectors through the cached two-pass suffix path the trainer uses
    tokens, soft = reloaded.tokenize(["a cat sat on the mat"], INSTRUCTION), reloaded.soft_prompt(INSTRUCTION)
    with torch.no_grad():
        single, cached = reloaded.embedding(tokens, soft), reloaded.embedding.forward_suffix_cached(tokens, soft)
    assert torch.allclose(single, cached, atol=1e-5)
    # a new backbone gets its own deep alignment (sized to its layers); P and the old alignment stay
    before = torch.as_tensor(reloaded.encode(["a cat"]))
    moved = attach_backbone(reloaded, "tiny-qwen2")  # (in place)
    assert moved.alignment.deep_up.shape[0] == moved.embedding.lm.config.num_hidden_layers
    Trainer(moved, records, train_config(tmp_path, "moved", mode="alignment", max_steps=2)).train()
    again = PromptEmbedder.from_pretrained(tmp_path / "moved", backbone="tiny-llama", device="cpu")
    assert torch.allclose(torch.as_tensor(again.encode(["a cat"])), before)
