"""Training loops for in-context learners: online and offline DQN over multi-episode trials,
configs, checkpoints and resume. Import from the submodules:

- ``config``: ``TrainConfig``, every number of a run, validated field by field;
- ``loop``: ``train(config, run_dir)``, the online (play, replay, learn) and offline loop;
- ``replay``: the replay buffer of whole trials and ``sample_batch``;
- ``checkpoint``: safetensors training states and exported models, written atomically;
- ``log``: ``metrics.jsonl`` (and TensorBoard) and ``read_metrics``;
- ``hf``: the same objective on a Hugging Face causal LM with peft adapters.
"""
