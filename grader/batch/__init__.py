"""Batch grading for instructors: ``python -m grader batch SUBMISSIONS --out OUT``.

- ``collect.py``   the learners in a submissions folder, unpacked safely into private copies.
- ``launcher.py``  runs one learner's grading; nothing it started outlives it.
- ``run.py``       grades each learner in a scoring process of its own, a few at a time.
- ``gradebook.py`` gradebook.csv, a row per learner as they finish (and ``--resume``).
- ``feedback.py``  each learner's feedback.md.
- ``report.py``    the class report, report.html, readable offline.
- ``progress.py``  the progress bar.
"""
