"""A warm grading host: pytest, the grader, MLflow and scikit-learn imported once, one
warm worker, and a forked scoring process per grading.

- ``main.py``    the host process (``python -I main.py ROOT ISOLATION CALL_TIMEOUT``).
- ``slot.py``    its warm worker (a zygote that forks a sandbox per learner), and how it
                 fences learners in (users, cgroups).
- ``client.py``  ``Host``: start one, ask it to grade, stop it; ``HostReply``, what it says
                 of a grading. Batch grading keeps one per slot; a notebook one per kernel,
                 watch one while it runs.
"""
