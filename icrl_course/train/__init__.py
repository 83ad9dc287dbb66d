"""Training Q-networks by sequence DQN over multi-episode trials, online or offline, for any model kind.

Import from the submodules:

- ``config``: ``TrainConfig``, every number of a run with its model section, validated field by field;
- ``build``: ``build_network`` and ``tokenizer_for``, from a model section to a ``models.protocol.QNetwork``, and
  ``check_run``, what a config needs from the model, the maps and the machine;
- ``loop``: ``train(config, run_dir)``, the online (play, replay, learn) and offline loop, on one or several processes;
- ``replay``: the replay buffer of whole trials and ``sample_batch``;
- ``state``: the training state a killed run resumes from, checked part by part before it is restored;
- ``log``: ``metrics.jsonl`` (and TensorBoard) and ``read_metrics``, repaired on resume;
- ``lock``: the run-folder lock that keeps two runs out of one folder;
- ``adapt``: ``compare_methods``, one trained base fine-tuned with each method (full, LoRA, IA3), measured.

``python -m icrl_course.train`` is ``icrl-course train`` (for ``torchrun`` and ``accelerate launch``).
"""
