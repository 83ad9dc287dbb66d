"""Turning trials into model inputs: compact tokens for the small transformer (``compact``), text for language
models (``text``: the paper's chat format exactly, and a compact word format).

``base`` defines what every encoding produces (``EncodedTrial``) and how
encoded trials are packed into batches (``pack`` -> ``StepBatch``).
"""

from icrl_course.tokenize.base import ContextTooLongError, EncodedTrial, StepBatch, pack

__all__ = ["ContextTooLongError", "EncodedTrial", "StepBatch", "pack"]
