"""Training losses, one per file."""
from .infonce import InfoNCE

__all__ = ["InfoNCE"]
