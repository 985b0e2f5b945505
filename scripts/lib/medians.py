"""Medians of a measuring script's results, by mode, and how the second mode compares.

Reads lines `MODE VALUE [VALUE…]` (one per round and mode) and prints, for each column, the
median of each mode and the change from the first mode named to the second:

    python3 scripts/lib/medians.py RESULTS MODE_A MODE_B [COLUMN_NAME…]
"""
import statistics
import sys


def main() -> None:
    path, a, b, *names = sys.argv[1:]
    by: dict[str, list[list[float]]] = {a: [], b: []}
    for line in open(path):
        mode, *values = line.split()
        by.setdefault(mode, []).append([float(v) for v in values])
    columns = len(by[a][0]) if by[a] else 0
    for i in range(columns):
        name = names[i] if i < len(names) else f"column {i + 1}"
        ma = statistics.median(r[i] for r in by[a])
        mb = statistics.median(r[i] for r in by[b])
        ratio = f"{mb / ma:.3f}" if ma else "n/a"
        print(f"{name}: median {a} {ma:.1f}, {b} {mb:.1f}: {b}/{a} = {ratio}")


if __name__ == "__main__":
    main()
