"""Q-networks: a small transformer written from scratch (``models.transformer``) and a wrapper
that makes any Hugging Face causal LM a Q-network through peft adapters (``models.hf``).

Import from the submodules; this package re-exports nothing so the two halves stay independent.
"""
