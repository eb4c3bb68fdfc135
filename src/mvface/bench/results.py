"""Benchmark results as data: one JSON file per run, and the summary generated from them.

Every ``mvface bench NAME`` run writes ``RESULTS/<kind>/<UTC time>.json`` (:func:`write_result`,
atomically, never over an earlier run): the machine (:class:`~mvface.bench.machine.MachineInfo`
facts), the command and its arguments, the measured tables (ratios are columns of them), the
goals checked and notes. :func:`summary_markdown` turns a results folder into one short markdown
page, the latest run of each kind (and variant) on each machine with a link to its JSON file;
``mvface bench report`` writes it to ``BENCHMARKS.md``. Tables are never edited by hand: a run
adds a file, the summary is regenerated.

File layout (``schema`` :data:`SCHEMA`)::

    {"schema": ..., "kind": "inference", "variant": "", "title": "Inference speed",
     "utc": "2026-11-27T04:10:00Z", "command": "mvface bench inference ...",
     "arguments": {...}, "machine": {"cpu": ..., "cpus": 2, ...},
     "tables": [{"name": ..., "columns": [...], "rows": [[...], ...], "digits": {...},
                 "summary": true}],
     "goals": [{"goal": ..., "measured": ..., "met": true}], "notes": [...], "source": null}

Numbers are stored unrounded (``null`` for missing or not finite); ``digits`` says how many
decimals a column shows in tables.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvface._io import json_ready
from mvface.bench.report import markdown_table
from mvface.errors import BadInputError

__all__ = [
    "SCHEMA",
    "SUMMARY_COMMAND",
    "BenchResult",
    "ResultTable",
    "default_summary_path",
    "latest_runs",
    "load_results",
    "machine_label",
    "read_result",
    "record_run",
    "result_json",
    "summary_markdown",
    "utc_now",
    "write_result",
    "write_summary",
]

#: Version tag of the JSON layout.
SCHEMA = "mvface-bench-result/1"

#: The command that regenerates the summary (named in the page it writes).
SUMMARY_COMMAND = "mvface bench report"

#: Order of the kinds in the summary (others follow alphabetically).
KIND_ORDER = ("accuracy", "inference", "synth", "train", "loader")


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ResultTable:
    """One measured table of a run.

    Attributes:
        name: what the table shows (one sentence).
        columns: column headers, units in them (``ms/face``, ``faces/s``).
        rows: one list of cells per row (numbers unrounded, ``None`` for n/a).
        digits: column -> decimals shown in markdown (numbers of other columns: 2).
        summary: whether the generated summary shows this table.
    """

    name: str
    columns: list[str]
    rows: list[list[Any]]
    digits: dict[str, int] = field(default_factory=dict)
    summary: bool = True

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"row has {len(row)} cells, the table {len(self.columns)}: {row!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "name": self.name,
            "columns": list(self.columns),
            "rows": json_ready(self.rows),
            "digits": dict(self.digits),
            "summary": self.summary,
        }

    def markdown(self) -> str:
        """The table in GitHub markdown, numbers rounded to :attr:`digits`."""
        rows = [
            [_cell(v, self.digits.get(c, 2)) for c, v in zip(self.columns, row, strict=True)]
            for row in self.rows
        ]
        return markdown_table(self.columns, rows)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"
    return str(value)


@dataclass
class BenchResult:
    """One benchmark run (see the module docstring for the file layout).

    Attributes:
        kind: ``inference``, ``accuracy``, ``synth``, ``train``, ``loader``, ...
        title: heading of the run.
        command: the command line that reproduces it.
        machine: :meth:`MachineInfo.to_dict` (plus ``accelerator`` for GPU runs).
        tables: the measured tables.
        arguments: the settings of the run (option -> value).
        variant: what tells apart runs of one kind kept side by side (training: model and loss
            mode); empty when the latest run of a kind on a machine replaces the earlier ones.
        utc: when it ran, ``YYYY-MM-DDTHH:MM:SSZ``.
        goals: goals checked on this run: ``{"goal", "measured", "met"}`` (``met`` ``None``:
            not measured).
        notes: one-line remarks (models left out, load average at the end, total time).
        source: where the numbers came from when not written by the run itself.
    """

    kind: str
    title: str
    command: str
    machine: dict[str, Any]
    tables: list[ResultTable]
    arguments: dict[str, Any] = field(default_factory=dict)
    variant: str = ""
    utc: str = field(default_factory=utc_now)
    goals: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (strict JSON: no NaN)."""
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "variant": self.variant,
            "title": self.title,
            "utc": self.utc,
            "command": self.command,
            "arguments": json_ready(self.arguments),
            "machine": json_ready(self.machine),
            "tables": [t.to_dict() for t in self.tables],
            "goals": json_ready(self.goals),
            "notes": list(self.notes),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path = "result") -> BenchResult:
        """Parse :meth:`to_dict`'s form.

        Raises:
            BadInputError: not a result of :data:`SCHEMA` or a field of the wrong type.
        """
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            raise BadInputError(source, f"not a benchmark result (schema {SCHEMA} expected)")
        try:
            if not all(isinstance(t["name"], str) for t in data["tables"]):
                raise ValueError("a table name is not text")
            tables = [
                ResultTable(
                    name=t["name"],
                    columns=[str(c) for c in t["columns"]],
                    rows=[list(r) for r in t["rows"]],
                    digits={str(k): int(v) for k, v in t.get("digits", {}).items()},
                    summary=bool(t.get("summary", True)),
                )
                for t in data["tables"]
            ]
            kind = str(data["kind"])
            if not kind or "/" in kind or kind.startswith("."):
                raise ValueError(f"bad kind {kind!r}")
            return cls(
                kind=kind,
                title=str(data["title"]),
                command=str(data["command"]),
                machine=dict(data["machine"]),
                tables=tables,
                arguments=dict(data.get("arguments") or {}),
                variant=str(data.get("variant") or ""),
                utc=str(data["utc"]),
                goals=[dict(g) for g in data.get("goals") or []],
                notes=[str(n) for n in data.get("notes") or []],
                source=data.get("source"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(source, f"malformed benchmark result ({exc})") from None


def _file_stamp(utc: str) -> str:
    """``2026-11-27T04:10:00Z`` -> ``2026-11-27T04-10-00Z`` (no colons in file names)."""
    return utc.replace(":", "-")


def result_json(result: BenchResult) -> str:
    """The file text of ``result``: indented strict JSON, one line per table row."""
    data = result.to_dict()
    rows = {}
    for i, table in enumerate(data["tables"]):  # rows as placeholders, filled in compactly
        key = f"@rows{i}@"
        rows[key] = table["rows"]
        table["rows"] = key
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    for key, value in rows.items():
        lines = ",\n        ".join(
            json.dumps(row, ensure_ascii=False, allow_nan=False) for row in value
        )
        text = text.replace(f'"{key}"', f"[\n        {lines}\n      ]" if value else "[]")
    return text + "\n"


def write_result(result: BenchResult, folder: str | Path) -> Path:
    """Write ``result`` to ``folder/<kind>/<utc>.json`` atomically; never replaces a file.

    Two runs finishing in the same second get ``<utc>-2.json``, ``-3`` ... (the name is claimed
    with an exclusive create before the content is moved onto it).

    Returns:
        The file written.
    """
    from mvface._io import atomic_write_text

    out = Path(folder) / result.kind
    out.mkdir(parents=True, exist_ok=True)
    text = result_json(result)
    stem = _file_stamp(result.utc)
    for n in range(1, 1000):
        path = out / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        atomic_write_text(path, text)
        return path
    raise BadInputError(out, f"too many results named {stem}*.json")


def read_result(path: str | Path) -> BenchResult:
    """Read one result file.

    Raises:
        BadInputError: unreadable, not JSON, or not a result.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(path, f"cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(path, f"not JSON ({exc})") from None
    return BenchResult.from_dict(data, path)


def load_results(folder: str | Path) -> tuple[list[tuple[Path, BenchResult]], list[str]]:
    """Every ``folder/<kind>/*.json`` result, oldest first.

    Returns:
        ``(path, result)`` pairs sorted by time then file name, and one line per file skipped
        (``"<file>: <problem>"``).
    """
    found: list[tuple[Path, BenchResult]] = []
    skipped: list[str] = []
    for path in sorted(Path(folder).glob("*/*.json")):
        try:
            found.append((path, read_result(path)))
        except BadInputError as exc:
            skipped.append(str(exc))
    found.sort(key=lambda pr: (pr[1].utc, _suffix_number(pr[0]), pr[0].name))
    return found, skipped


def _suffix_number(path: Path) -> int:
    """2 for ``...Z-2.json``, 1 for ``...Z.json`` (order of runs within one time stamp)."""
    _, z, suffix = path.stem.rpartition("Z-")
    return int(suffix) if z and suffix.isdigit() else 1


def machine_label(machine: Mapping[str, Any]) -> str:
    """Short name of a machine: CPU model, usable CPUs and the accelerator if any."""
    label = f"{machine.get('cpu', 'unknown CPU')}, {machine.get('cpus', '?')} CPUs"
    accelerator = machine.get("accelerator")
    return f"{label}, {accelerator}" if accelerator else label


def latest_runs(
    results: Iterable[tuple[Path, BenchResult]],
) -> dict[tuple[str, str, str], tuple[Path, BenchResult]]:
    """The latest run of each (kind, machine, variant); ``results`` oldest first."""
    latest: dict[tuple[str, str, str], tuple[Path, BenchResult]] = {}
    for path, result in results:
        latest[(result.kind, machine_label(result.machine), result.variant)] = (path, result)
    return latest


def _kind_key(kind: str) -> tuple[int, str]:
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), kind)


def _link(path: Path, base: Path | None) -> str:
    if base is None:
        return path.as_posix()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(path.resolve(), base.resolve()).replace(os.sep, "/")


def _met(value: Any) -> str:
    return "n/a" if value is None else ("met" if value else "not met")


def summary_markdown(
    folder: str | Path, link_base: str | Path | None = None, intro: Sequence[str] = ()
) -> str:
    """The summary page of a results folder: the latest run of each kind on each machine.

    Args:
        folder: the results folder (``<kind>/<utc>.json`` below it).
        link_base: folder the page will live in (links to the JSON files are relative to it).
        intro: extra paragraphs after the standard opening.

    Returns:
        Markdown text; deterministic for the same files (no time of generation in it).
    """
    folder = Path(folder)
    base = Path(link_base) if link_base is not None else None
    results, skipped = load_results(folder)
    latest = latest_runs(results)
    counts: dict[str, int] = {}
    for _, r in results:
        counts[r.kind] = counts.get(r.kind, 0) + 1
    lines = [
        "# mvface benchmarks",
        "",
        f"Generated by `{SUMMARY_COMMAND}` from the result files in "
        f"[`{_link(folder, base)}/`]({_link(folder, base)}/) (one JSON file per run of "
        "`mvface bench NAME`: machine, command, arguments, measured rows and ratios); do not "
        "edit it by hand. It shows the latest run of each kind on each machine; the other "
        f"runs are in the folder ({len(results)} in all). Every run measures mvface and its "
        "peers or baseline in the same process, interleaved: compare the ratios within a run, "
        "not absolute times across machines or runs.",
        "",
        *[p for para in intro for p in (para, "")],
    ]
    for kind in sorted({k for k, _, _ in latest}, key=_kind_key):
        runs = sorted(
            (v for k, v in latest.items() if k[0] == kind),
            key=lambda pr: (machine_label(pr[1].machine), pr[1].variant),
        )
        lines += [f"## {runs[0][1].title}", ""]
        by_machine: dict[str, list[tuple[Path, BenchResult]]] = {}
        for path, r in runs:
            by_machine.setdefault(machine_label(r.machine), []).append((path, r))
        for machine, group in by_machine.items():
            if len(group) > 1 and _one_shared_table(group):
                lines += _merged_variants(machine, group, base)
                continue
            lines += _runs_one_by_one(group, base)
    if skipped:
        lines += ["Result files skipped:", "", *[f"- {s}" for s in skipped], ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _meta(path: Path, r: BenchResult, base: Path | None) -> str:
    """The run's time, file and command."""
    return f"{r.utc} · [{path.name}]({_link(path, base)}) · `{r.command}`"


def _goals_line(r: BenchResult, prefix: str = "Goals") -> list[str]:
    if not r.goals:
        return []
    goals = "; ".join(f"{g['goal']}: {g['measured']} — {_met(g['met'])}" for g in r.goals)
    return [f"- {prefix}: {goals}"]


def _one_shared_table(group: Sequence[tuple[Path, BenchResult]]) -> bool:
    """Whether every run of ``group`` shows one summary table, all with the same columns."""
    shown = [[t for t in r.tables if t.summary] for _, r in group]
    return all(len(s) == 1 for s in shown) and len({tuple(s[0].columns) for s in shown}) == 1


def _merged_variants(
    machine: str, group: Sequence[tuple[Path, BenchResult]], base: Path | None
) -> list[str]:
    """Variants of one kind on one machine as one table with a ``variant`` column."""
    lines = [f"### {machine}", ""]
    tables = [next(t for t in r.tables if t.summary) for _, r in group]
    for (path, r), table in zip(group, tables, strict=True):
        lines.append(f"- **{r.variant}**: {table.name} ({_meta(path, r, base)})")
    merged = ResultTable(
        name="",
        columns=["variant", *tables[0].columns],
        rows=[[r.variant, *row] for (_, r), t in zip(group, tables, strict=True) for row in t.rows],
        digits=tables[0].digits,
    )
    lines += ["", merged.markdown().rstrip("\n")]
    for _, r in group:
        lines += _goals_line(r, f"Goals ({r.variant})")
    return [*lines, ""]


def _runs_one_by_one(group: Sequence[tuple[Path, BenchResult]], base: Path | None) -> list[str]:
    """Each run under its own heading with all its summary tables."""
    lines: list[str] = []
    for path, r in group:
        what = machine_label(r.machine) + (f" — {r.variant}" if r.variant else "")
        lines += [f"### {what}", ""]
        # the run's time, file and command, then (hard line break) the first table's caption
        meta = _meta(path, r, base)
        shown = [t for t in r.tables if t.summary]
        for i, table in enumerate(shown):
            head = [meta + "\\", table.name] if i == 0 else [table.name]
            lines += [*head, "", table.markdown().rstrip("\n")]
            if i < len(shown) - 1:
                lines.append("")
        if not shown:
            lines.append(meta)
        lines += _goals_line(r)  # a list ends the table without a blank line
        lines.append("")
    return lines


def write_summary(folder: str | Path, out: str | Path, intro: Sequence[str] = ()) -> Path:
    """Regenerate the summary page ``out`` from ``folder`` (atomic write).

    Returns:
        ``out``.
    """
    from mvface._io import atomic_write_text

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, summary_markdown(folder, link_base=out.parent, intro=intro))
    return out


def default_summary_path(folder: str | Path) -> Path:
    """Where the summary of ``folder`` goes by default: ``BENCHMARKS.md`` beside it."""
    return Path(folder).resolve().parent / "BENCHMARKS.md"


def record_run(
    result: BenchResult, folder: str | Path, summary: str | Path | None = None
) -> tuple[Path, Path]:
    """Write ``result`` into ``folder`` and regenerate the summary page from the folder.

    Args:
        result: the run.
        folder: the results folder.
        summary: the page (``None``: :func:`default_summary_path`).

    Returns:
        The result file and the summary page written.
    """
    path = write_result(result, folder)
    page = write_summary(folder, summary if summary is not None else default_summary_path(folder))
    return path, page
