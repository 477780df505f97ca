class IndexerError(RuntimeError):
    """A problem the user can fix (bad path, unknown collection, ...); the message says how."""
