"""`promptembedder eval` and the GPU-side `embed` command, run as a user would (tiny models)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.cli import main
from training.evaluation.embed import main as embed_main
from tests.test_eval_data import write_beir
from tests.test_eval_mteb import DOCS, QRELS, QUERIES


@pytest.fixture
def beir(tmp_path):
    return write_beir(tmp_path / "beir", DOCS, QUERIES, QRELS)


def eval_json(capsys, *args) -> dict | list:
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_caches_results_and_embeddings(beir, capsys, isolated_home):
    first = eval_json(capsys, "--model", "tiny", "--data", str(beir))
    assert first["cached"] is False and first["dataset"] == "beir" and first["metric"] == "ndcg_at_10"
    assert 0.0 <= first["value"] <= 1.0
    again = eval_json(capsys, "--model", "tiny", "--data", str(beir))
    assert again["cached"] is True and again["value"] == first["value"]
    assert list((isolated_home / "eval-cache" / "embeddings").glob("*.npy"))  # query and document stores
    # a new instruction is a new result, and only the queries are embedded again
    other = eval_json(capsys, "--model", "tiny", "--data", str(beir), "--instruction", "Find the text")
    assert other["cached"] is False and other["instruction"] == "Find the text"
    assert len(list((isolated_home / "eval-cache" / "embeddings").glob("*.npy"))) == 3


def test_compare_prints_models_side_by_side(beir, capsys):
    assert main(["eval", "--compare", "tiny", "raw:tiny-llama:last", "bm25", "--data", str(beir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "ndcg_at_10" in out[1] and "mrr_at_10" in out[1]
    assert [line.split()[0] for line in out[2:]] == ["tiny", "raw:tiny-llama:last", "bm25"]
    assert out[-1].split()[1] == "1.0000"  # bm25 on queries that share their document's words


def test_record_merges_into_the_results_file(beir, tmp_path, capsys):
    record = tmp_path / "results.json"
    record.write_text(json.dumps({"results": [{"model": "x", "dataset": "beir", "split": "test",
                                               "metric": "ndcg_at_10", "value": 0.1, "device": "cuda"}]}))
    eval_json(capsys, "--compare", "bm25", "tiny", "--data", str(beir), "--record", str(record))
    eval_json(capsys, "--model", "bm25", "--data", str(beir), "--record", str(record))
    entries = json.loads(record.read_text())["results"]
    assert [(e["model"], e["device"]) for e in entries] == [("x", "cuda"), ("tiny", "cpu"), ("bm25", "cpu")]
    assert entries[-1]["value"] == 1.0 and entries[-1]["metric"] == "ndcg_at_10"


def test_label_names_the_recorded_row_and_is_refused_with_compare(beir, tmp_path, capsys):
    record = tmp_path / "results.json"
    labelled = eval_json(capsys, "--model", "tiny", "--label", "my-run", "--data", str(beir), "--record", str(record))
    assert labelled["model"] == "my-run"
    again = eval_json(capsys, "--model", "tiny", "--data", str(beir))  # the cached result, under the name asked
    assert again["cached"] is True and again["model"] == "tiny" and again["value"] == labelled["value"]
    assert [e["model"] for e in json.loads(record.read_text())["results"]] == ["my-run"]
    keyword = eval_json(capsys, "--model", "tiny", "--mode", "keyword", "--label", "fts5", "--data", str(beir))
    assert keyword["model"] == "fts5" and keyword["mode"] == "keyword"
    assert main(["eval", "--compare", "tiny", "bm25", "--label", "x", "--data", str(beir)]) == 2
    assert "--label names the one --model" in capsys.readouterr().err


def test_bad_data_and_bad_models_are_clear_errors(beir, tmp_path, capsys):
    assert main(["eval", "--model", "tiny", "--task", "retrieval", "--data", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (beir / "queries.jsonl").write_text('{"_id": "q0"}\n')
    assert main(["eval", "--model", "tiny", "--data", str(beir)]) == 2
    assert "queries.jsonl:1: a JSON object with _id, text is expected" in capsys.readouterr().err
    sts = tmp_path / "sts.tsv"
    sts.write_text("a\tb\t1.0\nc\td\t2.0\n")
    assert main(["eval", "--model", "bm25", "--task", "sts", "--data", str(sts)]) == 2
    assert "retrieval task only" in capsys.readouterr().err
    assert main(["eval", "--model", "no-such-model", "--task", "sts", "--data", str(sts)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_gpu_embed_command_then_scoring_the_precomputed_vectors(beir, tmp_path, capsys):
    out = tmp_path / "vectors"
    # the GPU machine has no mteb, datasets or bm25s: the embed command must not import them
    code = ("import sys; from training.evaluation.embed import main; rc = main(sys.argv[1:]); "
            "bad = [m for m in sys.modules "
            "if m.split('.')[0] in ('mteb', 'datasets', 'bm25s', 'sentence_transformers')]; "
            "assert not bad, bad; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "--model", "raw:tiny-llama:mean", "--task", "retrieval",
                           "--data", str(beir), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["sides"]["document"]["stored"] == len(DOCS) and summary["sides"]["query"]["stored"] == len(QUERIES)
    precomputed = eval_json(capsys, "--model", "raw:tiny-llama:mean", "--data", str(beir), "--embeddings", str(out))
    direct = eval_json(capsys, "--model", "raw:tiny-llama:mean", "--data", str(beir), "--no-cache")
    assert direct["cached"] is False and direct["device"] == "cpu"
    assert precomputed["fingerprint"] == direct["fingerprint"]
    assert precomputed["value"] == pytest.approx(direct["value"], abs=1e-4)
    # vectors for another instruction were never computed: say how to get them
    assert main(["eval", "--model", "raw:tiny-llama:mean", "--data", str(beir), "--embeddings", str(out),
                 "--instruction", "Other"]) == 2
    assert "were not precomputed" in capsys.readouterr().err
    assert main(["eval", "--model", "tiny", "--data", str(beir), "--embeddings", str(out)]) == 2
    assert "holds no embeddings for model 'tiny'" in capsys.readouterr().err


def test_eval_help_is_instant_and_lists_the_model_forms():
    done = subprocess.run([sys.executable, "-m", "app.cli", "eval", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "all-minilm-l6-v2" in done.stdout and "--compare" in done.stdout and "--embeddings" in done.stdout


def test_every_model_kind_runs_checkpoints_included(beir, tmp_path, capsys):
    from embedder import PromptEmbedder, PromptEmbedderConfig

    PromptEmbedder.from_pretrained("tiny", device="cpu").save_pretrained(tmp_path / "ours")
    lora = PromptEmbedderConfig(embedding_backbone="tiny-llama", prompting_backbone=None,
                                embedding_lora={"r": 4, "lora_alpha": 8})
    PromptEmbedder.from_config(lora).save_pretrained(tmp_path / "lora-baseline")
    models = [str(tmp_path / "ours"), str(tmp_path / "lora-baseline"), "tiny-qwen2", "raw:tiny-gemma3:last"]
    results = eval_json(capsys, "--compare", *models, "--data", str(beir))
    assert [r["model"] for r in results] == models
    assert len({r["fingerprint"] for r in results}) == len(models)
    assert all(0.0 <= r["value"] <= 1.0 for r in results)


def test_gpu_embed_of_one_alignment_of_a_multi_backbone_checkpoint(beir, tmp_path, capsys):
    from embedder import PromptEmbedder
    from training.align import attach_backbone

    model = attach_backbone(PromptEmbedder.from_pretrained("tiny", device="cpu"), "tiny-qwen2")
    model.save_pretrained(tmp_path / "ours")  # aligned to tiny-llama and tiny-qwen2
    out = tmp_path / "vectors"
    # embedded elsewhere under another path: --label names it as the scorer will
    assert embed_main(["--model", str(tmp_path / "ours"), "--backbone", "tiny-qwen2", "--task", "retrieval",
                       "--data", str(beir), "--out", str(out), "--label", "shipped"]) == 0
    capsys.readouterr()
    args = ("--model", str(tmp_path / "ours"), "--data", str(beir))
    precomputed = eval_json(capsys, "--model", "shipped", "--data", str(beir), "--backbone", "tiny-qwen2",
                            "--embeddings", str(out))
    direct = eval_json(capsys, *args, "--backbone", "tiny-qwen2", "--no-cache")
    assert precomputed["fingerprint"] == direct["fingerprint"]
    assert precomputed["value"] == pytest.approx(direct["value"], abs=1e-4)
    assert precomputed["model"] == "shipped@tiny-qwen2"  # each backbone of a checkpoint is its own row
    # the other alignment is another model: its vectors were not computed, and are not served
    assert main(["eval", "--model", "shipped", "--data", str(beir), "--backbone", "tiny-llama",
                 "--embeddings", str(out)]) == 2
    assert "holds no embeddings for model" in capsys.readouterr().err


def test_eval_scores_the_search_modes(beir, capsys):
    keyword = eval_json(capsys, "--model", "tiny", "--data", str(beir), "--mode", "keyword")
    assert keyword["model"] == "keyword" and keyword["mode"] == "keyword"
    assert keyword["value"] == 1.0  # queries share their document's words, as for bm25
    semantic = eval_json(capsys, "--model", "tiny", "--data", str(beir))
    hybrid = eval_json(capsys, "--model", "tiny", "--data", str(beir), "--mode", "hybrid")
    assert hybrid["model"] == "tiny hybrid" and hybrid["fingerprint"] != semantic["fingerprint"]
    assert hybrid["value"] > semantic["value"]  # the random model alone ranks poorly; the words carry it
    leaning = eval_json(capsys, "--model", "tiny", "--data", str(beir), "--mode", "hybrid", "--keyword-weight", "0")
    assert leaning["value"] == pytest.approx(semantic["value"])  # weight 0: the semantic ranking alone
    assert main(["eval", "--model", "tiny", "--data", str(beir), "--mode", "hybrid", "--keyword-weight", "2"]) == 2
    assert "keyword weight" in capsys.readouterr().err
