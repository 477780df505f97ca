#!/usr/bin/env bash
# prepare-data.sh DATA_DIR: the shipped model's training data: licensed sets only (no twitter-url, no squadshifts; SciFact train
# qrels only, STS-B train only). Each task with its own instruction.
set -euo pipefail
OUT=$(realpath -m "${1:?usage: prepare-data.sh DATA_DIR}")
cd "$(dirname "$0")/../.."  # after the paths above are made absolute (relative ones: the caller's)
D=${SHARED:-../shared/data}
exec .venv/bin/promptembedder prepare-data -o "$OUT" --hard-negatives 1 --skip-top 1 --dev-fraction 0.02 \
  --data "jsonl:$D/squad/pairs.jsonl::Given a question, retrieve the Wikipedia passage that answers it." \
  --data "jsonl:$D/nq-qed/pairs.jsonl::Given a web search query, retrieve the Wikipedia passage that answers it." \
  --data "jsonl:$D/snli/pairs.jsonl::Retrieve semantically similar text." \
  --data "jsonl:$D/arxiv-2007-2017/pairs.jsonl::Given the title of a scientific paper, retrieve its abstract." \
  --data "jsonl:$D/arxiv-cs-2025/pairs.jsonl::Given the title of a scientific paper, retrieve its abstract." \
  --data "qa:$D/medquad/pairs.jsonl::Given a medical question, retrieve the passage that answers it." \
  --data "beir:$D/scifact::Given a scientific claim, retrieve documents that support or refute the claim" \
  --data "sts:$D/stsbenchmark/sts-train.csv::Retrieve semantically similar text."
