"""The runs a report reads: run folders, their evaluated points (`predictions/epoch=NN.metrics.json`,
00 = before training), the metrics files (checked, with the number of rows of the saved answers
beside them), and the figures re-scored from a point's saved answers with another parser (`--parser`).

A RUN_DIR is either a run (a logger version folder holding `predictions/`) or a parent folder,
in which case every run below it is read, in natural order (version_2 before version_10). Below
a parent, two kinds of folders are not runs and are skipped with a note (`skipped_folders`): an
`interleave frontier` output (its `alpha=A/` folders hold points too, but are one checkpoint at
interpolated weights: their table is the frontier's `frontier.md`), and a run-like folder with no
evaluated point (a `version_N` an aborted `validate` or a run not evaluated yet leaves). A RUN_DIR
that is itself a frontier's α folder is refused.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError
from interleave.eval.predictions import Prediction
from interleave.eval.tasks import condition_prefix, parse_tag
from interleave.tools.saved_answers import answer_rows, answers_path, check_saved_rows

METRICS_DIR = "predictions"
METRICS_FILE = re.compile(r"^epoch=(\d+)\.metrics\.json$")
TEXT_LAYOUT = "text"
FRONTIER_KEY = "frontier_key"  # what `interleave frontier` writes in each α's metrics file
RUN_LIKE = re.compile(r"^version_\d+$")  # a logger's run folder (Lightning's TensorBoard and CSV loggers)


def natural_key(path: Path) -> list[Any]:
    """Sort key so that version_2 comes before version_10."""
    return [[int(p) if p.isdigit() else p for p in re.split(r"(\d+)", part)] for part in path.parts]


def epoch_points(run: Path) -> dict[int, Path]:
    """The evaluated epoch points of a run folder: point NN -> its metrics file."""
    folder = Path(run) / METRICS_DIR
    if not folder.is_dir():
        return {}
    points: dict[int, Path] = {}
    for file in folder.iterdir():
        match = METRICS_FILE.match(file.name)
        if match and file.is_file():
            points[int(match.group(1))] = file
    return dict(sorted(points.items()))


def frontier_output(folder: Path) -> bool:
    """Whether a folder with evaluated points is an `interleave frontier` α folder (its metrics
    file holds the frontier's key) rather than a run."""
    first = next(iter(epoch_points(folder).values()), None)
    try:
        data = json.loads(first.read_text(encoding="utf-8")) if first is not None else None
    except (OSError, UnicodeDecodeError, ValueError):
        return False  # not readable: read_metrics names it when the run is read
    return isinstance(data, dict) and FRONTIER_KEY in data


def _scan(path: Path) -> tuple[list[Path], list[str]]:
    """The runs below a parent folder, sorted, and a note for each folder below it that is skipped."""
    runs, frontiers, empty = [], set(), []
    for folder in sorted(
        (p for p in [path, *path.rglob("*")] if p.is_dir()), key=lambda p: natural_key(p.relative_to(path))
    ):
        if epoch_points(folder):
            if frontier_output(folder):
                frontiers.add(folder.parent)
            else:
                runs.append(folder)
        elif RUN_LIKE.match(folder.name) or (folder / METRICS_DIR).is_dir() or (folder / "hparams.yaml").is_file():
            empty.append(folder)
    empty = [
        f
        for f in empty
        if f != path and not any(r.is_relative_to(f) for r in runs) and not any(f.is_relative_to(x) for x in frontiers)
    ]
    notes = [
        f"{folder}: an interleave frontier output (its alpha=A/ folders: one checkpoint at interpolated weights; "
        f"its table is {folder / 'frontier.md'}), not a run: skipped"
        for folder in sorted(frontiers, key=lambda p: natural_key(p.relative_to(path)))
    ]
    notes += [
        f"{folder}: no evaluated point ({METRICS_DIR}/epoch=NN.metrics.json: an evaluation aborted or not "
        f"run yet), not a run: skipped"
        for folder in empty
    ]
    return runs, notes


def find_runs(path: str | Path) -> list[Path]:
    """The run folders of RUN_DIR: itself if it holds metrics, else every run below it, sorted
    (frontier outputs and folders without an evaluated point skipped: `skipped_folders`)."""
    path = Path(path)
    if not path.is_dir():
        raise InterleaveError(f"{path}: no such folder")
    if epoch_points(path):
        if frontier_output(path):
            raise InterleaveError(
                f"{path}: an interleave frontier output (one checkpoint at interpolated weights), "
                f"not a run; its table is {path.parent / 'frontier.md'}"
            )
        return [path]
    runs, skipped = _scan(path)
    if not runs:
        found = f" ({'; '.join(skipped)})" if skipped else ""
        raise InterleaveError(f"{path}: no run with {METRICS_DIR}/epoch=NN.metrics.json found{found}")
    return runs


def skipped_folders(run_dirs: Sequence[str | Path]) -> list[str]:
    """A note for every folder below the RUN_DIRs that `find_runs` skips (frontier outputs, folders
    with no evaluated point), each once."""
    notes: list[str] = []
    for run_dir in map(Path, run_dirs):
        if run_dir.is_dir() and not epoch_points(run_dir):
            notes += [note for note in _scan(run_dir)[1] if note not in notes]
    return notes


def format_points(points: Sequence[int]) -> str:
    return ", ".join(f"{p:02d}" for p in points) or "none"


def select_point(run: Path, epoch: int | None) -> tuple[int, Path]:
    """The (point, file) to report: the latest one, or `epoch` if given."""
    points = epoch_points(run)
    if not points:
        raise InterleaveError(f"{run}: no {METRICS_DIR}/epoch=NN.metrics.json found")
    if epoch is None:
        return next(reversed(points.items()))
    if epoch not in points:
        raise InterleaveError(f"{run}: no epoch point {epoch:02d} (available: {format_points(list(points))})")
    return epoch, points[epoch]


def read_metrics(file: str | Path) -> dict[str, Any]:
    """Read and check one metrics file; metric values must be numbers (null/NaN = missing)."""
    file = Path(file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InterleaveError(f"{file}: not a readable metrics JSON file ({err})") from None
    if not isinstance(data, dict):
        raise InterleaveError(f"{file}: expected a JSON object of tag -> value, got {type(data).__name__}")
    for tag, value in data.items():
        if parse_tag(tag) is None or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InterleaveError(f"{file}: {tag} should be a number, got {value!r}")
    check_saved_rows(file, data)
    return data


def condition_prefixes(metrics: dict[str, Any], by_condition: dict[str, Any]) -> dict[str, str]:
    """Each condition's tag prefix: the primary layout is logged under plain `val/`; files that do
    not name it list it first."""
    primary = metrics.get("layout") or next((c for c in by_condition if c != TEXT_LAYOUT), None)
    return {c: condition_prefix(c, primary) for c in by_condition}


def rescore_rows(metrics: dict[str, Any], by_condition: dict[str, list[Prediction]], parser: str) -> dict[str, Any]:
    """`metrics` with every SHARD and identity figure recomputed from `by_condition` (`answer_rows`)."""
    from interleave.eval.evaluate import condition_metrics

    out = {tag: value for tag, value in metrics.items() if parse_tag(tag) is None}
    for condition, prefix in condition_prefixes(metrics, by_condition).items():
        out.update(condition_metrics(by_condition[condition], prefix))
        if prefix == "val":  # the primary layout
            out["layout"] = condition
    out["parser"] = parser
    return out


def rescoring_answers(metrics_file: str | Path, parser: str) -> dict[str, list[Prediction]]:
    """The point's saved answers (`epoch=NN.jsonl` beside `metrics_file`) by condition, the yes/no
    answers parsed with `parser`'s rules; refused when the point saved none."""
    answers_file = answers_path(metrics_file)
    if not answers_file.is_file():
        raise InterleaveError(f"{answers_file}: not found; --parser re-scores the saved answers, which it needs")
    return answer_rows(answers_file, parser)


def rescore(metrics_file: str | Path, metrics: dict[str, Any], parser: str) -> dict[str, Any]:
    """`metrics` with every SHARD and identity figure recomputed from the point's saved answers,
    parsed with `parser`'s rules; the metrics are the evaluation's own
    (`interleave.eval.evaluate.condition_metrics`)."""
    return rescore_rows(metrics, rescoring_answers(metrics_file, parser), parser)


def load_run(path: str | Path, epoch: int | None = None) -> dict[str, Any]:
    """The metrics of one epoch point of a run (the latest unless `epoch` is given)."""
    _, file = select_point(Path(path), epoch)
    return read_metrics(file)


def point_metrics(file: Path, parser: str | None) -> dict[str, Any]:
    """One point's metrics as the report shows them: as logged, or re-scored with `parser`."""
    metrics = read_metrics(file)
    return metrics if parser is None else rescore(file, metrics, parser)


def run_label(run: Path, run_dir: Path) -> str:
    """The run folder relative to the RUN_DIR's parent (its grandparent when RUN_DIR is the run
    itself), e.g. `demo/version_3` either way."""
    base = run_dir.resolve().parent
    if run.resolve() == run_dir.resolve():
        base = base.parent
    try:
        return run.resolve().relative_to(base).as_posix()
    except ValueError:
        return run.as_posix()


def labelled_runs(run_dirs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(run folder, its label) of every run below the RUN_DIRs, each once, each label its own:
    runs whose labels collide (`a/runs/t/version_0` and `b/runs/t/version_0`, both `t/version_0`)
    are named by as many trailing folders as tell them apart, so no row, interval or provenance
    check takes one run for the other."""
    out, seen = [], set()
    for run_dir in map(Path, run_dirs):
        for run in find_runs(run_dir):
            if run.resolve() not in seen:
                seen.add(run.resolve())
                out.append((run, run_label(run, run_dir)))
    taken = Counter(label for _, label in out)
    return [
        (run, label if taken[label] == 1 else distinct_label(run, label, [r for r, l in out if l == label]))
        for run, label in out
    ]


def distinct_label(run: Path, label: str, namesakes: list[Path]) -> str:
    """`run`'s shortest trailing path, longer than `label`, that none of its `namesakes` shares."""
    parts, others = run.resolve().parts, [r.resolve().parts for r in namesakes if r.resolve() != run.resolve()]
    n = len(Path(label).parts) + 1
    while n < len(parts) and any(other[-n:] == parts[-n:] for other in others):
        n += 1
    return Path(*parts[-n:]).as_posix()


def check_parser(parser: str | None) -> None:
    from interleave.eval.answers import PARSERS

    if parser is not None and parser not in PARSERS:
        raise InterleaveError(f"unknown parser {parser!r}; expected one of {', '.join(PARSERS)}")
