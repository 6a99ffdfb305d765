"""The learner's commands around `pytest grader`: watch, hint, reset, progress."""
