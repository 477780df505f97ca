"""Evaluation with mteb's own evaluators on local data, for our models and the baselines.

- data.py: readers for a BEIR folder, a scored pair file (STS) and labelled pairs
- encoders.py: the small Encoder protocol and its implementations (PromptEmbedder in any form,
  all-MiniLM-L6-v2, cached and precomputed vectors); bm25.py: the BM25 baseline (bm25s)
- mteb_adapter.py: our encoders as mteb models; tasks.py: mteb tasks over local data
- runner.py: one evaluation with its caches; report.py: tables and the results file
- embed.py: `python -m training.evaluation.embed`, vectors only (for a GPU machine without mteb)
"""
