"""What the figure scripts share (imported, not run): one-line failures, matplotlib or a clear
line saying it is missing, and reading the JSON files they draw."""
import json
import pathlib
import sys


def fail(message: str, code: int = 2) -> None:
    """One line naming the problem; exit 2 (bad input) unless told otherwise."""
    print(f"{pathlib.Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(code)


def pyplot():
    """matplotlib.pyplot on the Agg backend, or exit 2 with one line when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        fail("matplotlib is missing (pip install matplotlib, or apt-get install python3-matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_json(path):
    """A JSON file, or exit 2 naming the file and the problem."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
        fail(f"cannot read {path} as JSON: {e}")


def read_records(path):
    """The objects of a JSON file: one object, a list of them, or one per line (.jsonl)."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError as e:
        fail(f"cannot read {path}: {e}")
    try:
        d = json.loads(text)
        return d if isinstance(d, list) else [d]
    except ValueError:
        pass
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as e:
                fail(f"{path}:{n}: not JSON ({e})")
    return records
