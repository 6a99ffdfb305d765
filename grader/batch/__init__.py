"""Batch grading for instructors: ``python -m grader batch SUBMISSIONS --out OUT``.

- ``collect.py``   the learners in a submissions folder, unpacked safely into private copies
                   (a notebook is read in a process of its own, under the time limit).
- ``run.py``       grades each learner in a scoring process of its own, ``--workers`` slots at a
                   time: each slot is a warm grading host (grader/host/) with a sandboxed
                   worker; nothing a grading starts outlives it. SIGINT/SIGTERM stop it cleanly.
- ``scratch.py``   the batch's locked scratch folder; the next batch removes a killed one's.
- ``outputs.py``   the files of OUT, and which learner names may become folders there.
- ``gradebook.py`` gradebook.csv, a row per learner as they finish (``--resume``, ``--regrade``).
- ``roster.py``    ``--roster``: submissions to students, and who did not submit.
- ``sheets.py``    CSV cells a spreadsheet cannot run as formulas (gradebook and exports).
- ``export.py``    ``python -m grader export``: the grades as Canvas or Moodle import them.
- ``feedback.py``  each learner's feedback.md (learner text never read as Markdown).
- ``report.py``    the class report, report.html, readable offline.
- ``progress.py``  the progress bar.
"""
