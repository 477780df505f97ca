# Sourced by the default-model scripts: the task mixture every run of the shipped recipe trains on. Each weight
# multiplies a task's size-proportional share of batches: SciFact and STS-B train are small and up-weighted,
# SQuAD and the two arXiv sets are large and down-weighted (the lever study's "no task weights" run drops them).
MIXTURE=(--task-weight beir:scifact=8 --task-weight sts:sts-train=6 --task-weight jsonl:squad/pairs=0.6
    --task-weight jsonl:arxiv-2007-2017/pairs=0.5 --task-weight jsonl:arxiv-cs-2025/pairs=0.5)
