"""Damage fuzzing for tests/test_reliability.py, run in a child interpreter so a crash or hang is caught.

``python corrupt_fuzz.py BASE WORK N SEED`` copies the index BASE to WORK, then N times damages one of
its files (a flipped bit anywhere, or a truncation) and checks the contract:

- ``Index.open(WORK, verify=True)`` raises ``IndexCorrupt`` naming the damaged file (``e.path``);
- plain ``Index.open`` either raises ``IndexCorrupt`` or gives an index whose searches, gets and
  ``len`` all work (a damaged byte in postings or text may go unnoticed until ``verify``), and then
  ``index.verify()`` raises ``IndexCorrupt`` naming the file;
- a truncated file is ``IndexCorrupt`` naming it at plain open;
- a writer that deletes documents of every segment and commits either refuses with ``IndexCorrupt``
  naming the file (``meta.json`` unchanged) or commits, and then ``verify()`` still names the damaged
  file: damage is never laundered into a new file with a fresh checksum (a flipped deletions file once
  was, bringing a deleted document back).

Anything else is printed and the exit code is 1. The last line of output is a JSON summary.

``python corrupt_fuzz.py sweep BASE WORK [RANDOM]`` is the exhaustive sweep: every byte of every file of
up to 4 KiB flipped (one bit) and zeroed, a truncation every 16 bytes, and RANDOM random offsets of
larger files; each variant is opened and exercised under a 2 GiB address-space limit and a 20 s alarm,
and its answers compared with the undamaged index's. It counts tracebacks (any error but
``IndexCorrupt`` naming the file), out-of-memory, hangs, and variants that answered differently
without an ``IndexCorrupt`` (only ``verify``/``search check`` could tell).
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import traceback
from collections import Counter
from pathlib import Path

from search import Index, IndexCorrupt

QUERIES = ["zebra", "rumah besar", '"river mountain"', "+kota -jalan", "title:judul", "bridge OR pasar", "lang:id laut"]


def exercise(index: Index, ids: list[str]) -> list:
    """Everything a reader does: searches with text and snippets, gets, counts; returns the answers."""
    out: list = []
    for q in QUERIES:
        for h in index.search(q, k=100, per_document=False):
            out.append((h.doc_id, h.passage, round(h.score, 9), h.text, h.title, h.meta, h.snippet, h.highlights))
    for doc_id in ids:
        out.append(index.get(doc_id))
        out.append(doc_id in index)
    out.append(len(index))
    out.append(index.content_hashes())
    stats = index.stats()
    out.append((stats["documents"], stats["passages"], stats["languages"]))
    return out


def variants(data: bytes, rng: random.Random, n_random: int) -> list[tuple[str, bytes]]:
    """Damaged copies of one file's bytes: flips and zeros of every byte (or of random ones), truncations."""
    n = len(data)
    offsets = range(n) if n <= 4096 else sorted(rng.sample(range(n), min(n, n_random)))
    out = []
    for i in offsets:
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        out.append(("flipped", bytes(flipped)))
        if data[i]:
            zeroed = bytearray(data)
            zeroed[i] = 0
            out.append(("zeroed", bytes(zeroed)))
    step = 16 if n <= 4096 else max(16, n // max(n_random, 1))
    out.extend(("truncated", data[:cut]) for cut in range(0, n, step))
    return out


def sweep(base: Path, work: Path, n_random: int) -> int:
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    def alarm(*_):
        raise TimeoutError("hang")

    signal.signal(signal.SIGALRM, alarm)
    rng = random.Random(18)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    ids = sorted(Index.open(base).content_hashes())
    expected = exercise(Index.open(base), ids)
    files = sorted(p.name for p in work.iterdir() if p.name != "write.lock" and p.is_file())
    outcomes: Counter[str] = Counter()
    total = 0
    for name in files:
        path = work / name
        original = path.read_bytes()
        for kind, damaged in variants(original, rng, n_random):
            total += 1
            path.write_bytes(damaged)
            signal.alarm(20)
            try:
                try:
                    got = exercise(Index.open(work), ids)
                except IndexCorrupt as e:
                    named = e.path and Path(e.path).name == name
                    outcomes["IndexCorrupt" if named else "traceback: IndexCorrupt naming another file"] += 1
                else:
                    outcomes["same answers" if got == expected else "answered differently"] += 1
            except MemoryError:
                outcomes["out of memory"] += 1
            except TimeoutError:
                outcomes["hang"] += 1
            except Exception:
                outcomes["traceback"] += 1
                if outcomes["traceback"] <= 5:
                    print(f"{kind} {name}:\n{traceback.format_exc()}", flush=True)
            finally:
                signal.alarm(0)
                path.write_bytes(original)
    print(json.dumps({"variants": total, "outcomes": dict(sorted(outcomes.items()))}))
    bad = sum(v for k, v in outcomes.items() if k.startswith("traceback") or k in ("out of memory", "hang"))
    return 1 if bad else 0


def commit_after_damage(work: Path, name: str) -> str:
    """Delete a document of each segment of the damaged index and commit; see the module's contract."""
    before = (work / "meta.json").read_bytes()
    try:
        with Index.open(work).writer() as w:
            w.delete("d1")
            w.delete("d45")
    except IndexCorrupt as e:
        assert e.path and Path(e.path).name == name, f"the writer's IndexCorrupt names {e.path}, not {name}"
        assert (work / "meta.json").read_bytes() == before, "a refused writer changed meta.json"
        return "writer refused"
    try:
        Index.open(work).verify()
        raise AssertionError(f"a commit laundered the damaged {name}: verify() passes")
    except IndexCorrupt as e:
        assert e.path and Path(e.path).name == name, f"after a commit verify() names {e.path}, not {name}"
    return "committed, damage still named"


def main(base: Path, work: Path, n: int, seed: int) -> int:
    rng = random.Random(seed)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    ids = sorted(Index.open(base).content_hashes())
    files = sorted(p.name for p in work.iterdir() if p.name.startswith("seg_") or p.name == "meta.json")
    outcomes: Counter[str] = Counter()
    failures = 0
    for trial in range(n):
        name = rng.choice(files)
        path = work / name
        original = path.read_bytes()
        damaged = bytearray(original)
        truncate = rng.random() < 0.2
        if truncate:
            del damaged[rng.randrange(len(damaged)) :]
        else:
            # half the flips in the first 2 KB (magic, header, small tables), half anywhere
            span = len(damaged) if trial % 2 else min(len(damaged), 2048)
            damaged[rng.randrange(span)] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        kind = "truncated" if truncate else "flipped"
        try:
            try:
                Index.open(work, verify=True)
                raise AssertionError("verify=True accepted a damaged file")
            except IndexCorrupt as e:
                assert e.path and Path(e.path).name == name, f"IndexCorrupt names {e.path}, not {name}"
            try:
                index = Index.open(work)
            except IndexCorrupt as e:
                assert e.path and Path(e.path).name == name, f"IndexCorrupt names {e.path}, not {name}"
                outcomes[f"{kind}: IndexCorrupt at open"] += 1
            else:
                assert not truncate, "a truncated file opened without IndexCorrupt"
                try:
                    exercise(index, ids)
                    outcomes[f"{kind}: opened and searched"] += 1
                except IndexCorrupt as e:
                    assert e.path and Path(e.path).name == name, f"IndexCorrupt names {e.path}, not {name}"
                    outcomes[f"{kind}: IndexCorrupt while reading"] += 1
                try:
                    index.verify()
                    raise AssertionError("verify() accepted a damaged file")
                except IndexCorrupt as e:
                    assert e.path and Path(e.path).name == name, f"IndexCorrupt names {e.path}, not {name}"
                outcomes[f"{kind}: {commit_after_damage(work, name)}"] += 1
        except Exception:
            failures += 1
            print(f"trial {trial}: {kind} {name}:\n{traceback.format_exc()}", flush=True)
        finally:
            if (work / "meta.json").read_bytes() != (base / "meta.json").read_bytes():
                shutil.rmtree(work)  # a commit happened: start the next trial from the base again
                shutil.copytree(base, work)
            else:
                path.write_bytes(original)
    print(json.dumps({"trials": n, "failures": failures, "outcomes": dict(sorted(outcomes.items()))}))
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1] == "sweep":
        sys.exit(sweep(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 2000))
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
