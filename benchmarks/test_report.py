"""report.py: goals from the data file are judged on the measured ratios, and only the generated part
of RESULTS.md between the markers is rewritten (hand-written sections of other helpers survive)."""

from __future__ import annotations

import json

from benchmarks import report


def _bench(tmp_path, name, records):
    benchmarks = [
        {"group": group, "extra_info": dict(info, engine=engine, corpus="en", size="50000", passages=50000)}
        for group, engine, info in records
    ]
    path = tmp_path / name
    path.write_text(json.dumps({"machine_info": {}, "commit_info": {"id": "abc1234def"}, "benchmarks": benchmarks}))
    return path


def test_goals_are_judged_from_the_goal_file_and_hand_sections_survive(tmp_path):
    bench = _bench(
        tmp_path,
        "bench-50000.json",
        [
            ("index", "telusur", {"case": "2core", "cores": 2, "docs_per_s": 30.0, "seconds": 1.0, "load_1m": 1.5}),
            ("index", "telusur", {"case": "1core", "cores": 1, "docs_per_s": 25.0, "seconds": 1.2, "load_1m": 1.1}),
            ("index", "baseline", {"case": "1core", "cores": 1, "docs_per_s": 20.0, "seconds": 1.5}),
        ],
    )
    goals = tmp_path / "goals.json"
    goals.write_text(
        json.dumps(
            {
                "goals": [
                    {
                        "text": "two workers over the ceiling",
                        "group": "index",
                        "metric": "docs_per_s",
                        "op": ">=",
                        "value": 1.6,
                        "floor": 1.0,
                        "a": {"engine": "telusur", "cores": 2},
                        "b": {"engine": "baseline", "cores": 1},
                    },
                    {
                        "text": "two workers over one",
                        "group": "index",
                        "metric": "docs_per_s",
                        "op": ">=",
                        "value": 1.1,
                        "a": {"engine": "telusur", "cores": 2},
                        "b": {"engine": "telusur", "cores": 1},
                    },
                    {
                        "text": "whoosh ratio",
                        "group": "index",
                        "metric": "docs_per_s",
                        "op": ">=",
                        "value": 15,
                        "a": {"engine": "telusur", "cores": 2},
                        "b": {"engine": "whoosh", "cores": 2},
                    },
                ]
            }
        )
    )
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n\n## Serving (hand-written)\n\nkept as is\n")
    args = ["--bench", str(bench), "--goals", str(goals), "--out", str(out), "--no-plots"]
    assert report.main(args) == 0
    text = out.read_text()
    assert text.startswith("# Results\n\n## Serving (hand-written)\n\nkept as is\n")
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| #")}
    assert (
        "1.50" in rows["two workers over the ceiling"]
        and "**missed**; floor met" in rows["two workers over the ceiling"]
    )
    assert "1.20" in rows["two workers over one"] and rows["two workers over one"].endswith("| met |")
    assert "not measured" in rows["whoosh ratio"]

    # a second run replaces only the generated part, and a section after it stays too
    out.write_text(out.read_text() + "\n## Notes after\n\nalso kept\n")
    bench.write_text(bench.read_text().replace('"docs_per_s": 30.0', '"docs_per_s": 40.0'))
    assert report.main(args) == 0
    text = out.read_text()
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    assert text.endswith("## Notes after\n\nalso kept\n") and "kept as is" in text
    assert "2.00" in next(line for line in text.splitlines() if "two workers over the ceiling" in line)
