"""Feedback for the course's exercises: each lesson's checks live in ``checks.lessonNN`` and
compare a learner's function with the library's reference on chosen cases, built on ``checks.core``.
"""
