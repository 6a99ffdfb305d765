"""`python -m grader inspect`: check the free-form practice where it lives.

Learners do the lesson's open practice in their own ``mlflow.db`` or on a class tracking
server. This package grades that work against a small rubric without running any learner
code and without writing to the store:

- ``rubric.py``   the rubric as data: items, points (summing to 100) and hints.
- ``source.py``   opening a store read-only: a copy of an SQLite file, or a server
                  reached through read calls only.
- ``checks.py``   what the store must hold for each rubric item, said in a sentence.
- ``cli.py``      the command: one store, or every learner of a class server.
"""
