"""The grader of the MLflow exercise kit.

How it fits together (each folder does one thing):

- ``catalogue.toml``      the exercises, their checks, points and hints: the one source of truth.
- ``test_ex0*.py``        the checks, one class per curriculum function, one test per check.
- ``core/``               what the checks stand on: the catalogue loader, seeded inputs,
                          fresh MLflow stores, outcome types and the results format.
- ``sandbox/``            learner code runs here, in a process apart from the checks:
                          ``worker.py`` runs inside it, ``client.py`` drives it.
- ``plugin.py``           the pytest plugin: options, fixtures, the learner's summary and
                          ``--grade-json``.
- ``authoring/``          tools for the course author: the stub generator, and the lesson notebook
                          and nbgrader course builder (``notebooks.py``).
- ``notebook.py``         ``check(module, function)``: a notebook cell grading one exercise.
- ``inspect/``            ``python -m grader inspect``: the open practice graded in a learner's
                          own store or on a class server, read-only, running no learner code.
"""
