"""Turning trials into model inputs: compact tokens for the small transformer, chat text for Llama.

``base`` defines what every encoding produces (``EncodedTrial``) and how
encoded trials are packed into batches (``pack`` -> ``StepBatch``).
"""

from icrl_course.tokenize.base import ContextTooLongError, EncodedTrial, StepBatch, pack

__all__ = ["ContextTooLongError", "EncodedTrial", "StepBatch", "pack"]
