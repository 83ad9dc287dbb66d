"""Training loops for in-context learners: online and offline DQN over multi-episode trials,
configs, checkpoints and resume. Import from the submodules.
"""
