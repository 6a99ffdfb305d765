"""Batch grading for instructors: ``python -m grader batch SUBMISSIONS --out OUT``.

- ``collect.py``   the learners in a submissions folder, unpacked safely into private copies.
- ``run.py``       grades each learner in a scoring process of its own, ``--workers`` at a
                   time: each slot is a warm grading host (grader/host/) with a sandboxed
                   worker; nothing a grading starts outlives it.
- ``gradebook.py`` gradebook.csv, a row per learner as they finish (and ``--resume``).
- ``feedback.py``  each learner's feedback.md.
- ``report.py``    the class report, report.html, readable offline.
- ``progress.py``  the progress bar.
"""
