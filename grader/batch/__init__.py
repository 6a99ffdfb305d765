"""Batch grading for instructors: ``python -m grader batch SUBMISSIONS --out OUT``.

- ``collect.py``   the learners in a submissions folder, packed into bytes and unpacked safely
                   into private copies where they are graded (a notebook is read in a
                   process of its own, under the time limit).
- ``run.py``       the batch's client: it has an engine grade the learners and alone writes
                   the rows, the learners' files, the progress bar and the report, as
                   outcomes come in. SIGINT/SIGTERM stop it cleanly.
- ``grading.py``   one learner, wherever it is graded: unpack, a scoring process forked by
                   a warm grading host (grader/host/) with a sandboxed worker, the row.
- ``local_engine.py`` grades on this machine, ``--workers`` slots at a time.
- ``dask_engine.py``  grades on a Dask cluster (``--dask``): a grading slot per learner,
                   grading hosts started on each Dask worker by a worker plugin.
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
