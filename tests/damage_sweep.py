"""The damage sweep of issue #24, run in a child interpreter by tests/test_hostile.py.

``python damage_sweep.py BASE WORK FIRST LAST SEED`` copies the index BASE to WORK and runs cases
FIRST..LAST-1 of the sweep: every byte of each small index file (<= ``SMALL`` bytes) replaced by its
complement, ``RANDOM_CASES`` random offsets of each larger file, and a truncation at ``TRUNCATIONS``
random lengths of every file. Each case damages one file, then opens, searches, reads and verifies the
index (``corrupt_fuzz.exercise``), under a per-case timeout (``SIGALRM``) and a memory cap for the
process (``RLIMIT_AS``). The contract: every error is a ``SearchError`` (``IndexCorrupt`` naming the
damaged file when it is one); a traceback of anything else, a timeout or a ``MemoryError`` is a
failure. The last line of output is a JSON summary with the counts.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import signal
import sys
import traceback
from collections import Counter
from pathlib import Path

from corrupt_fuzz import exercise

from search import Index, IndexCorrupt, SearchError

SMALL = 16_384
RANDOM_CASES = 400
TRUNCATIONS = 8
CASE_SECONDS = 20
MEMORY_CAP = 3 << 30


class CaseTimeout(BaseException):
    """Raised by the alarm: the case hung (BaseException, so no ``except Exception`` swallows it)."""


def cases(work: Path, seed: int) -> list[tuple[str, str, int]]:
    """(file name, "flip" or "truncate", offset) for the whole sweep, in a fixed order."""
    rng = random.Random(seed)
    out: list[tuple[str, str, int]] = []
    for path in sorted(work.iterdir()):
        if not (path.name.startswith("seg_") or path.name == "meta.json"):
            continue
        size = path.stat().st_size
        offsets = range(size) if size <= SMALL else sorted(rng.sample(range(size), RANDOM_CASES))
        out.extend((path.name, "flip", i) for i in offsets)
        out.extend((path.name, "truncate", rng.randrange(size)) for _ in range(TRUNCATIONS))
    return out


def run_case(work: Path, ids: list[str], name: str, kind: str, offset: int) -> str:
    """Damage one file, exercise the index, restore the file; the outcome's name (raises on a failure)."""
    path = work / name
    original = path.read_bytes()
    damaged = bytearray(original)
    if kind == "flip":
        damaged[offset] ^= 0xFF
    else:
        del damaged[offset:]
    path.write_bytes(bytes(damaged))
    try:
        try:
            index = Index.open(work)
            exercise(index, ids)
            index.verify()
        except IndexCorrupt as e:
            if not e.path or Path(e.path).name != name:
                raise AssertionError(f"IndexCorrupt names {e.path}, not {name}") from e
            return "IndexCorrupt"
        except SearchError as e:
            return type(e).__name__
        return "unnoticed"  # a flip the checksum cannot see does not exist: verify() must have raised
    finally:
        path.write_bytes(original)


def main(base: Path, work: Path, first: int, last: int, seed: int) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    def alarm(signum, frame):
        raise CaseTimeout()

    signal.signal(signal.SIGALRM, alarm)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    ids = sorted(Index.open(base).content_hashes())
    todo = cases(work, seed)[first:last]
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for name, kind, offset in todo:
        signal.alarm(CASE_SECONDS)
        try:
            outcomes[f"{kind}: {run_case(work, ids, name, kind, offset)}"] += 1
        except CaseTimeout:
            failures["hang"] += 1
            print(f"HANG {kind} {name}@{offset}", flush=True)
        except MemoryError:
            failures["out of memory"] += 1
            print(f"OOM {kind} {name}@{offset}", flush=True)
        except BaseException:
            failures["traceback"] += 1
            print(f"TRACEBACK {kind} {name}@{offset}:\n{traceback.format_exc()}", flush=True)
        finally:
            signal.alarm(0)
        if outcomes.get(f"{kind}: unnoticed"):
            failures["unnoticed"] += outcomes.pop(f"{kind}: unnoticed")
            print(f"UNNOTICED {kind} {name}@{offset}", flush=True)
    summary = {"cases": len(todo), "failures": dict(failures), "outcomes": dict(sorted(outcomes.items()))}
    print(json.dumps(summary))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
