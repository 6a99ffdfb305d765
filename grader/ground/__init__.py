"""The ground floor, below ``core`` and ``sandbox``: what any room of the grader stands on.

- ``exits.py``      how the kit's processes end, by name (commands, scoring processes, and
                    the worker, which loads this file by path: the sandbox holds it too).
- ``files.py``      learner-writable folders, touched without following a link.
- ``processes.py``  /proc, ending processes, and how the kit starts its own Pythons.

These import nothing from the grader but each other (``tests/test_architecture.py``).
"""
