"""The kit on a grading platform: `python -m grader package gradescope|github-classroom|prairielearn`.

- ``package.py``         what every package carries (the grader and the pinned requirements,
                         never the solutions), written as a folder or a zip.
- ``grading.py``         what runs on the platform: it finds the learner's modules in the
                         platform's folder as a batch does, grades them with the kit's own
                         grader (a batch's grading host, process limits), and hands back the
                         kit's results.json and feedback, or why there is nothing to grade.
- ``gradescope.py``, ``github_classroom.py``, ``prairielearn.py``: one platform each, its
                         files and its results format, made from the kit's results.
- ``cli.py``             the ``package`` command.

Nothing here grades on its own: a platform's score is the kit's score, in its format.
"""
