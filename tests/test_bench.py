"""The benchmark still runs: `bench/run --quick` completes and writes a well-formed table.

Speed itself is never asserted here; the figures live in bench/results.md.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("GET one", "GET list page (limit=100)", "POST", "PATCH", "90/10 mix")
SERVERS = ("floor (sync)", "floor (gthread)", "service")


def test_the_quick_benchmark_completes_with_every_request_answered(tmp_path):
    output = tmp_path / "results.md"
    bench_run("--quick", "--output", output)

    raw = _table(output.read_text(), "## Raw figures")
    assert [(row["Scenario"], row["Server"]) for row in raw] == [
        (scenario, server) for scenario in SCENARIOS for server in SERVERS
    ]
    for row in raw:
        assert int(row["Requests (all rounds)"].replace(",", "")) > 0
        assert row["Non-2xx"] == "0"
        assert row["Socket errors"] == "0"
        assert float(row["Peak RSS/worker MB"]) > 0

    ratios = _table(output.read_text(), "## Ratios to the floors")
    assert [(row["Scenario"], row["Server"]) for row in ratios] == [
        (scenario, server) for scenario in SCENARIOS for server in SERVERS[1:]
    ]
    for row in ratios:
        assert float(row["Ratio to sync floor"]) > 0
        assert float(row["Ratio to gthread floor"]) > 0
        assert float(row["CPU ratio to sync floor"]) > 0


def _table(markdown, heading):
    """The rows of the table that follows `heading`, as dicts keyed by its header."""
    after = markdown.split(f"\n{heading}\n", 1)[1].lstrip("\n").splitlines()
    lines = []
    for line in after:
        if not line.startswith("|"):
            break
        lines.append(line)
    header = _cells(lines[0])
    assert all(re.fullmatch(r"-+:?", cell) for cell in _cells(lines[1])), lines[1]
    rows = [_cells(line) for line in lines[2:]]
    assert all(len(cells) == len(header) for cells in rows), lines
    return [dict(zip(header, cells, strict=True)) for cells in rows]


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_the_simulated_call_benchmark_completes_with_every_delivery_made(tmp_path):
    output = tmp_path / "calls.md"
    bench_run("--calls", "--calls", 5, "--warm-up", 1, "--output", output)
    [row] = _table(output.read_text(), "## Figures")
    assert float(row["Wall ms: min"]) > 0
    assert float(row["Server CPU ms per call"]) > 0


def test_the_test_mode_benchmark_prints_both_measures_and_their_ratios():
    printed = bench_run("--test-mode", "--posts", 5, "--rounds", 2)
    posts, creates = printed.split("The create itself")
    for measure in (posts, creates):
        figures = dict(re.findall(r"^  (outside|test mode) +([\d,]+) µs", measure, re.MULTILINE))
        assert set(figures) == {"outside", "test mode"}
        assert all(int(figure.replace(",", "")) > 0 for figure in figures.values())
        assert re.search(r"^  ratio +\d+\.\d\d", measure, re.MULTILINE)
    assert re.search(r"^  ratio +\d+\.\d\d  \(target 1\.25: (not )?met\)$", creates, re.MULTILINE)


def bench_run(*arguments):
    """Run `bench/run` with `arguments`; it must succeed. Returns what it printed."""
    finished = subprocess.run(
        [str(ROOT / "bench" / "run"), *map(str, arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout
