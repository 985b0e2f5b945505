"""The one reader of `kmsim bench --json` reports for the scripts.

A report is a JSON list with one object per workload run; an older kmsim (the "before" binary
of a before/after script) printed {"results": [...]}, which is read the same.

    python3 scripts/lib/bench_json.py REPORT FIELD...

prints the FIELDs of the report's first run, space-separated (REPORT: a file, or - for
standard input). Python scripts import it instead (`sys.path.insert(0, "scripts/lib")`):
`runs(text)` gives every run, `first(text)` the first.
"""
import json
import sys


def runs(text: str) -> list:
    """Every run of a report given as its text."""
    r = json.loads(text)
    return r if isinstance(r, list) else r["results"]


def first(text: str) -> dict:
    """The first run of a report given as its text."""
    return runs(text)[0]


def main() -> None:
    path, *fields = sys.argv[1:]
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    run = first(text)
    print(" ".join(str(run[f]) for f in fields))


if __name__ == "__main__":
    main()
