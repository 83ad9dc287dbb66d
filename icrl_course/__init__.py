"""icrl_course: the companion library of the In-Context Reinforcement Learning course.

One module per lesson idea (see the course map in the README): ``envs`` builds
Frozen Lake, ``trials`` and ``baselines`` run agents over multi-episode trials,
``tokenize`` turns trials into model inputs, ``models`` and ``dqn`` make a
transformer a Q-network and train it, ``train``/``data``/``evaluate`` run the
experiments, ``plots``/``widgets`` show them and ``checks`` gives exercise
feedback.
"""

__version__ = "0.1.0"
