"""`python -m grader batch SUBMISSIONS_DIR --out OUT_DIR`: the instructor's batch grading,
`python -m grader similarity SUBMISSIONS_DIR --out OUT_DIR`: similar submissions, and
`python -m grader export OUT_DIR --to canvas|moodle`: its grades for an LMS."""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path

from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT
from grader.ground.exits import Exit


BATCH_EXIT_CODES = """exit codes:
  0    every learner of this run was graded (whatever their scores)
  1    the run ended, and some learner was not graded (an error or timeout row)
  2    refused: bad arguments, a gradebook that would be started anew, an unreadable roster,
       or a grading engine (Dask) that cannot start or go on; nothing more was written
  130  stopped by Ctrl-C (143: by SIGTERM): the rows written stay, --resume grades the rest"""
SIMILARITY_EXIT_CODES = """exit codes:
  0    compared: the list is written (empty or not)
  2    refused (SUBMISSIONS_DIR is not a folder): nothing was written"""
EXPORT_EXIT_CODES = """exit codes:
  0    every learner of the gradebook has a grade in the file
  1    the file is written, and some learners were left out (listed, with why)
  2    refused (no gradebook, no roster columns): nothing was written"""


def add_parser(commands) -> None:
    batch = commands.add_parser(
        "batch", help="grade a folder of learner submissions (untrusted code, sandboxed) into a gradebook",
        description="Grade every entry of SUBMISSIONS_DIR (a folder, a .zip or a notebook per learner) into "
                    "OUT_DIR/gradebook.csv, per-learner results.json and feedback.md, report.html and "
                    "functions.csv.", epilog=BATCH_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR")
    batch.add_argument("--out", type=Path, required=True, metavar="OUT_DIR")
    batch.add_argument("--workers", dest="slots", type=int, default=default_slots(),
                       help="learners graded at once on this machine, and the Dask workers of --dask local "
                            "(default: half the machine's cores, %(default)s: one grading keeps about two cores busy)")
    batch.add_argument("--seed", type=int, default=None, help="seed of the random inputs, the same for every learner")
    batch.add_argument("--timeout", type=float, default=900.0,
                       help="wall-clock seconds one submission may take in all (default %(default)s)")
    batch.add_argument("--call-timeout", type=float, default=None,
                       help=f"wall-clock seconds one learner call may take (default: {DEFAULT_CALL_TIMEOUT:g}, "
                            "as in `pytest grader`, at most --timeout / 4)")
    rerun = batch.add_mutually_exclusive_group()
    rerun.add_argument("--resume", action="store_true", help="grade only the learners not yet in gradebook.csv")
    rerun.add_argument("--regrade", type=_names, metavar="NAME[,NAME]|failed",
                       help="grade these learners again, replacing only their rows and files; `failed`: every "
                            "learner whose row is not graded (error, timeout, or missing with a submission now)")
    rerun.add_argument("--overwrite", action="store_true", help="start a new gradebook.csv over an existing one")
    batch.add_argument("--roster", type=Path, metavar="ROSTER_CSV",
                       help="columns learner,student_id,name,email (others kept): students without a "
                            "submission get a `missing` row, submissions without a student a warning")
    batch.add_argument("--duplicates", choices=("error", "newest"), default="error",
                       help="entries that name one learner (ada/ and ada.zip): an error row naming them all "
                            "(default), or grade the newest and say so in the row and the feedback")
    batch.add_argument("--excel", action="store_true", help="write a new gradebook.csv as UTF-8 with a byte "
                                                            "order mark, so Excel reads accented names right")
    batch.add_argument("--isolation", choices=("auto", "bwrap", "limits"), default="auto",
                       help="auto: bubblewrap where it works on every grading machine, else process limits")
    batch.add_argument("--dask", type=_dask_address, metavar="ADDRESS|local[:N]",
                       help="grade on a Dask cluster: a scheduler's address (tls://HOST:8786, or tcp:// on a "
                            "network only you can reach), whose Dask workers offer the grading-slot resource, "
                            "or local:N, N Dask workers on this machine (default N: --workers)")
    for option, what in (("--tls-ca-file", "the certificate authority's certificate"),
                         ("--tls-cert", "this client's certificate"), ("--tls-key", "this client's private key")):
        batch.add_argument(option, type=Path, metavar="PEM_FILE",
                           help=f"with --dask tls://...: {what} (PEM), as the scheduler's and workers' own "
                                "--tls-* options (default: Dask's configuration)")
    batch.add_argument("--similarity", action="store_true",
                       help="also list similar submissions (as `python -m grader similarity`): similarity.csv, "
                            "a page per pair in similarity/ and a section of report.html")
    _similarity_options(batch, "--similarity-")
    batch.set_defaults(handler=run)

    similar = commands.add_parser(
        "similarity", help="list the learners whose own code (the stubs' taken away) is much the same",
        description="Read every entry of SUBMISSIONS_DIR as `batch` does and compare what each learner wrote, "
                    "function by function, the stub's text taken away, names made alike and comments left out "
                    "(copydetect). Write OUT_DIR/similarity.csv (a row per listed pair and function), "
                    "OUT_DIR/similarity/pair-NNN.html (the shared code side by side) and a section of "
                    "OUT_DIR/report.html (the batch's report, when OUT_DIR holds a gradebook). A list to look at, "
                    "not a finding.", epilog=SIMILARITY_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    similar.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR")
    similar.add_argument("--out", type=Path, required=True, metavar="OUT_DIR")
    _similarity_options(similar, "--")
    similar.set_defaults(handler=_similarity)

    export = commands.add_parser(
        "export", help="write a batch's grades as a CSV that Canvas or Moodle imports",
        description="Read OUT_DIR/gradebook.csv (from `python -m grader batch ... --roster ROSTER_CSV`) and "
                    "write OUT_DIR/canvas.csv or OUT_DIR/moodle.csv: a row for each roster student whose "
                    "submission was graded, keyed by an identifier the LMS matches on.",
        epilog=EXPORT_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("out", type=Path, metavar="OUT_DIR")
    export.add_argument("--to", choices=("canvas", "moodle"), required=True)
    export.add_argument("--assignment", default="MLflow exercises",
                        help="the assignment's (grade item's) name in the LMS (default: %(default)s)")
    export.add_argument("--match", choices=("idnumber", "email"), default="idnumber",
                        help="Moodle: the identifier column written (ID number: the roster's student_id; or Email "
                             "address); map it to the user field of that name when importing (default: %(default)s)")
    export.add_argument("--assignment-id", metavar="ID",
                        help="Canvas: the id of an existing assignment to fill (its column is then "
                             "'NAME (ID)', as in Canvas's own export); without it Canvas makes a new one")
    export.add_argument("--excel", action="store_true", help="UTF-8 with a byte order mark, for Excel")
    export.set_defaults(handler=_export)


def _similarity_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    from grader.batch.similarity import AGAINST, MIN_LENGTH, THRESHOLD

    parser.add_argument(f"{prefix}threshold", dest="similarity_threshold", type=_share, default=THRESHOLD,
                        metavar="SHARE", help="list a pair when this share (0 to 1) of one side's own code is in the "
                                              "other's too (default %(default)s)")
    parser.add_argument(f"{prefix}min-length", dest="similarity_min_length", type=int, default=MIN_LENGTH,
                        metavar="TOKENS", help="only for a side that wrote at least this many tokens of its own, the "
                                               "stub's taken away (default %(default)s; a full submission has about "
                                               "3500)")
    parser.add_argument("--against", choices=sorted(AGAINST), default=None,
                        help="also compare every learner with the kit's reference solutions")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to 1, such as 0.8")
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one learner")
    return names


def _dask_address(text: str) -> str:
    if text == "local" or (text.startswith("local:") and text[6:].isdigit() and int(text[6:]) > 0):
        return text
    if text.startswith("local"):
        raise argparse.ArgumentTypeError("local[:N] takes a number of Dask workers, such as local:2")
    if "://" not in text and ":" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a scheduler's address (tcp://HOST:8786) nor local[:N]")
    return text


def default_slots() -> int:
    """Grading slots (``--workers``): one grading runs its learner calls and its own checks
    side by side and keeps about two cores busy, so more slots than half the cores only
    make them queue for the CPU (README.md, Speed)."""
    return max(1, (os.cpu_count() or 2) // 2)


def _seed(args: argparse.Namespace) -> int:
    """A resumed or regraded batch keeps the seed of the rows already written, so all rows compare."""
    from grader.batch import sheets
    from grader.batch.outputs import GRADEBOOK
    from grader.core.options import new_seed

    if args.seed is not None:
        return args.seed
    gradebook = args.out / GRADEBOOK
    if (args.resume or args.regrade) and gradebook.is_file():
        seeds = [row["seed"] for row in sheets.read_csv(gradebook)[1] if row.get("seed", "").isdigit()]
        if seeds:
            return int(seeds[0])
    return new_seed()


def resume_command(args: argparse.Namespace, left: list[str]) -> str:
    """The command that grades the learners an interrupted run left."""
    words = ["python", "-m", "grader", "batch", str(args.submissions), "--out", str(args.out)]
    for option, value, default in (("--workers", args.slots, default_slots()), ("--timeout", args.timeout, 900.0),
                                   ("--call-timeout", args.call_timeout, None), ("--roster", args.roster, None),
                                   ("--isolation", args.isolation, "auto"), ("--dask", args.dask, None),
                                   ("--duplicates", args.duplicates, "error"), ("--tls-ca-file", args.tls_ca_file, None),
                                   ("--tls-cert", args.tls_cert, None), ("--tls-key", args.tls_key, None)):
        if value != default:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    if args.similarity:
        words += ["--similarity", *similarity_words(args, "--similarity-")]
    return shlex.join(words + (["--regrade", ",".join(left)] if args.regrade else ["--resume"]))


def similarity_words(args: argparse.Namespace, prefix: str) -> list[str]:
    """The similarity options given that differ from the defaults, as words of a command."""
    from grader.batch.similarity import MIN_LENGTH, THRESHOLD

    words = []
    if args.similarity_threshold != THRESHOLD:
        words += [f"{prefix}threshold", f"{args.similarity_threshold:g}"]
    if args.similarity_min_length != MIN_LENGTH:
        words += [f"{prefix}min-length", str(args.similarity_min_length)]
    return words + (["--against", args.against] if args.against else [])


def _similarity_settings(args: argparse.Namespace):
    from grader.batch.similarity import Settings

    return Settings(args.similarity_threshold, args.similarity_min_length, args.against)


def run(args: argparse.Namespace) -> int:
    from grader.batch import gradebook, roster
    from grader.batch.outputs import GRADEBOOK
    from grader.batch.grading import GradingSettings
    from grader.batch.run import BatchError, Options, Stopped, run_batch

    if not args.submissions.is_dir():
        print(f"{args.submissions} is not a folder", file=sys.stderr)
        return Exit.REFUSED
    written = gradebook.rows_in(args.out / GRADEBOOK)
    if written and not (args.resume or args.regrade or args.overwrite):
        print(f"{args.out / GRADEBOOK} already holds {written} learner(s), and grading would start it anew. "
              "Add --resume to grade only the learners still missing, --regrade NAME[,NAME] to grade some "
              "again, or --overwrite to start a new gradebook.", file=sys.stderr)
        return Exit.REFUSED
    try:
        class_roster = roster.read(args.roster) if args.roster else None
    except roster.RosterError as error:
        print(error, file=sys.stderr)
        return Exit.REFUSED
    if not args.similarity and (args.against or similarity_words(args, "")):
        print("--similarity-threshold, --similarity-min-length and --against go with --similarity", file=sys.stderr)
        return Exit.REFUSED
    call_timeout = args.call_timeout or min(DEFAULT_CALL_TIMEOUT, args.timeout / 4)
    grading = GradingSettings(_seed(args), args.timeout, call_timeout, args.isolation)
    tls = {key: str(value) for key, value in (("tls_ca_file", args.tls_ca_file), ("tls_client_cert", args.tls_cert),
                                              ("tls_client_key", args.tls_key)) if value is not None}
    if tls and not (args.dask or "").startswith("tls://"):
        print("--tls-ca-file, --tls-cert and --tls-key are for --dask tls://HOST:PORT", file=sys.stderr)
        return Exit.REFUSED
    options = Options(args.submissions.resolve(), args.out.resolve(), grading, args.slots, dask=args.dask, dask_tls=tls,
                      keep=bool(args.resume or args.regrade), regrade=args.regrade or (), roster=class_roster,
                      excel=args.excel, duplicates=args.duplicates,
                      similarity=_similarity_settings(args) if args.similarity else None)
    print(f"grading {args.submissions} with seed {grading.seed}", file=sys.stderr)
    try:
        rows = run_batch(options)
    except KeyboardInterrupt:  # before the batch took over SIGINT: nothing was graded yet
        print(f"stopped before grading began. To grade: {resume_command(args, list(args.regrade or ()))}", file=sys.stderr)
        return Exit.signalled(signal.SIGINT)
    except (BatchError, gradebook.GradebookError) as error:
        print(error, file=sys.stderr)
        return Exit.REFUSED
    except Stopped as stopped:
        if stopped.reason:
            print(stopped.reason, file=sys.stderr)
        how = f" by {signal.Signals(stopped.signum).name}" if stopped.signum else ""
        print(f"stopped{how}: {stopped.written} learner(s) written to {args.out / GRADEBOOK}, "
              f"{len(stopped.left)} not graded (the ones in progress were dropped).", file=sys.stderr)
        print(f"To grade the rest: {resume_command(args, stopped.left)}", file=sys.stderr)
        return stopped.exit_code
    print(f"wrote {options.out / GRADEBOOK} and {options.out / 'report.html'}"
          + (f" (similar submissions: {options.out / 'similarity.csv'})" if args.similarity else ""), file=sys.stderr)
    return Exit.OK if all(r.status == "graded" for r in rows) else Exit.NOT_DONE


def _similarity(args: argparse.Namespace) -> int:
    from grader.batch import similarity
    from grader.core.text import printable

    if not args.submissions.is_dir():
        print(f"{args.submissions} is not a folder", file=sys.stderr)
        return Exit.REFUSED
    found = similarity.run(args.submissions, _similarity_settings(args))
    report = similarity.write_all(args.out, found)
    print(f"compared {len(found.entries) - len(found.unreadable)} submission(s) of {args.submissions}: "
          f"{len(found.pairs)} pair(s) listed", file=sys.stderr)
    for pair in found.pairs:
        print(f"  {pair.share(found.settings.min_length):.0%}  {printable(pair.a.name)} ~ {printable(pair.b.name)}  "
              f"{args.out / pair.page}", file=sys.stderr)
    for entry in found.unreadable:
        print(f"  not compared: {printable(entry.name)}: {printable(entry.problem or '')}", file=sys.stderr)
    print(f"wrote {args.out / similarity.SIMILARITY} and {report}", file=sys.stderr)
    return Exit.OK


def _export(args: argparse.Namespace) -> int:
    from grader.batch import export

    from grader.core.text import printable

    try:
        exported = export.write(args.out, args.to, args.assignment, excel=args.excel, match=args.match,
                                assignment_id=args.assignment_id)
    except export.ExportError as error:
        print(error, file=sys.stderr)
        return Exit.REFUSED
    print(f"wrote {exported.path}: {exported.written} grade(s)", file=sys.stderr)
    if exported.left_out:
        print(f"{len(exported.left_out)} learner(s) left out, so nothing changes for them in the LMS:", file=sys.stderr)
        for learner, why in exported.left_out:
            print(f"  {printable(learner)}: {printable(why)}", file=sys.stderr)
    return Exit.NOT_DONE if exported.left_out else Exit.OK

