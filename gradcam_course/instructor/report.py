"""``gradcam-course report``: what a class got right and wrong, on one HTML page.

Reads what ``gradcam-course grade`` wrote (``grades_<chapter>.csv`` and ``autograded/``) and writes
``reports/<chapter>/index.html`` with two PNG figures: the distribution of the automatic totals,
and the share of students who lost each test cell, with the messages they saw most often.
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402

from .grade import FAILED, FLAGGED, from_spreadsheet_safe, meta  # noqa: E402
from .layout import Course  # noqa: E402


def read_grades(root: Path, chapter: str) -> tuple[list[str], list[dict]]:
    path = Course(root).grades_csv(chapter)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `gradcam-course grade {chapter}` first.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [{**row, "student": from_spreadsheet_safe(row["student"])} for row in reader]
        fields = reader.fieldnames or []
    tests = fields[fields.index("reason") + 1:fields.index("total")]
    return tests, rows


def error_messages(root: Path, chapter: str, students: list[str]) -> dict[str, Counter]:
    """test cell → Counter of the first line of the error messages students got."""
    messages: dict[str, Counter] = {}
    for student in students:
        path = Course(root).autograded(student, chapter)
        if not path.is_file():
            continue
        for cell in nbformat.read(path, as_version=4).cells:
            gid = meta(cell).get("grade_id")
            for out in cell.get("outputs", []) if gid else []:
                if out.get("output_type") == "error":
                    first = f"{out.get('ename')}: {str(out.get('evalue')).splitlines()[0] if out.get('evalue') else ''}"
                    messages.setdefault(gid, Counter())[first[:160]] += 1
    return messages


def report(root: Path, chapter: str) -> Path:
    tests, rows = read_grades(root, chapter)
    scored = [r for r in rows if r["status"] != FAILED]
    out = Course(root).report_dir(chapter)
    out.mkdir(parents=True, exist_ok=True)
    maximum = float(rows[0]["max"]) if rows else 0.0

    lost = {t: sum(float(r[t]) == 0 for r in scored) / max(1, len(scored)) for t in tests}
    order = sorted(tests, key=lambda t: -lost[t])

    fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
    ax.hist([float(r["total"]) for r in scored], bins=min(20, max(5, len(scored))),
            range=(0, maximum or 1), color="tab:blue", edgecolor="white")
    ax.set(xlabel=f"automatic points (of {maximum:g})", ylabel="students",
           title=f"{chapter}: automatic totals ({len(scored)} graded)")
    fig.savefig(out / "totals.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(tests) + 1.2), layout="constrained")
    ax.barh(order[::-1], [100 * lost[t] for t in order[::-1]], color="tab:red")
    ax.set(xlabel="% of graded students who lost the test", xlim=(0, 100),
           title="Which tests the class failed")
    fig.savefig(out / "tests.png", dpi=110)
    plt.close(fig)

    messages = error_messages(root, chapter, [r["student"] for r in scored])
    counts = Counter(r["status"] for r in rows)
    failures = [(r["student"], r["reason"]) for r in rows if r["status"] == FAILED]
    flagged = [(r["student"], r["reason"]) for r in rows if r["status"] == FLAGGED]
    esc = html.escape
    unsandboxed = sum(r.get("sandbox") != "bwrap" for r in rows)
    warning = (f"<p><strong>NOT SANDBOXED: {unsandboxed} submission(s) ran without the OS sandbox "
               "(--no-sandbox, or graded before it existed); their code could reach your files "
               "and other submissions.</strong></p>" if unsandboxed else
               "<p>Every submission ran in the OS sandbox (bubblewrap).</p>")
    test_rows = "".join(
        f"<tr><td>{esc(t)}</td><td>{100 * lost[t]:.0f} %</td><td>"
        + "<br>".join(f"{n} × {esc(m)}" for m, n in messages.get(t, Counter()).most_common(3))
        + "</td></tr>" for t in order)
    listing = lambda items: "".join(f"<li>{esc(s)}: {esc(r)}</li>" for s, r in items) or "<li>none</li>"  # noqa: E731
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{esc(chapter)}: class report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .6em;
border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}</style></head><body>
<h1>{esc(chapter)}: class report</h1>
<p>{len(rows)} student folders: {counts.get('graded', 0)} graded, {counts.get(FLAGGED, 0)} flagged,
{counts.get(FAILED, 0)} failed. Mean automatic total of graded and flagged students:
{(sum(float(r['total']) for r in scored) / max(1, len(scored))):.1f} of {maximum:g}.</p>
{warning}
<img src="totals.png" alt="distribution of automatic totals">
<h2>Tests, most often lost first</h2>
<img src="tests.png" alt="share of students who lost each test">
<table><tr><th>test</th><th>lost by</th><th>most frequent messages</th></tr>{test_rows}</table>
<h2>Failed submissions (not graded)</h2><ul>{listing(failures)}</ul>
<h2>Flagged submissions (graded, read the code)</h2><ul>{listing(flagged)}</ul>
</body></html>
"""
    (out / "index.html").write_text(page)
    return out / "index.html"
