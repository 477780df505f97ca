"""Training, evaluation and benchmarks for PromptEmbedder."""
