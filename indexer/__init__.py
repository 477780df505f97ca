"""Document collections: loading, chunking, FAISS indexes and SQLite metadata. Knows nothing of training."""
