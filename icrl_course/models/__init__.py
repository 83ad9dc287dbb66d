"""Q-networks: one protocol (``models.protocol.QNetwork``: trials in, Q-values of the four actions at every step
out) and two implementations, a small transformer written from scratch (``models.transformer``, acting and
wrapped in ``models.agent``) and any Hugging Face causal LM with peft adapters (``models.hf``).

Import from the submodules; this package re-exports nothing.
"""
