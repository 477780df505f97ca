class TrainingError(RuntimeError):
    """A problem with training or evaluation input the user can fix; the message names file and line."""
