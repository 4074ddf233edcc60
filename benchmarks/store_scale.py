"""Store at fleet scale: time and peak memory of the reading commands over 1k, 10k and 100k runs.

A benchmark, not a test: it prints its figures (a markdown table for docs/measurements.md).

1. One tiny real sweep (``etameter bench --preset tiny --variants fp32,bf16 --trials 4``):
   two runs with 4 windows each, measured here.
2. For each size, a copy of that database with its runs cloned in SQL until it holds that
   many: each clone pair is a sweep of its own (a new ``sweep_id``), started a minute before
   the next, with new ids, the same windows; the derived columns are filled by the store's
   own triggers, as for any insert.
3. Each command runs as its own process (``python -m harness.cli ...``); its wall time and
   peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) are recorded. ``import`` adds a
   10k-run export file (runs of other ids) to each database, last, as it changes it.

Usage: ``python benchmarks/store_scale.py [--sizes 1000,10000,100000] [--workdir DIR]``.
The machine's other load is not controlled: on a shared machine the times are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SWEEP = ["bench", "--preset", "tiny", "--scenario", "prefill", "--variants", "fp32,bf16",
         "--trials", "4", "--steps", "3", "--warmup", "1", "--json"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def measure(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS in MB, exit status, CPU seconds) of one command run as a child
    process. CPU time (user + system) is what the command itself cost; on a shared machine
    wall time also counts the time it waited for a core."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(f"  ! {' '.join(argv[3:])} exited {code}: {stderr.decode()[-300:]}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, code, usage.ru_utime + usage.ru_stime


def clone(base: Path, target: Path, runs: int, tag: int) -> None:
    """``target``: ``base`` with its runs cloned in SQL until it holds ``runs`` runs (ids
    prefixed with ``tag``, so databases of different tags share no run)."""
    shutil.copyfile(base, target)
    conn = sqlite3.connect(target, isolation_level=None)
    per_sweep = conn.execute("select count(*) from runs").fetchone()[0]
    copies = runs // per_sweep
    run_cols = [r[1] for r in conn.execute("pragma table_info(runs)")]
    res_cols = [r[1] for r in conn.execute("pragma table_info(results)") if r[1] != "id"]
    changed = {
        "id": "printf('%02x%06x', :tag, n.i) || substr(r.id, 9)",
        "started_at": "strftime('%Y-%m-%dT%H:%M:%f', r.started_at, printf('-%d seconds', "
                      "60 * (:copies - n.i))) || '+00:00'",
        "config": "json_set(r.config, '$.sweep_id', printf('clone%02x%08d', :tag, n.i))",
    }
    seq = "with recursive n(i) as (select 1 union all select i + 1 from n where i < :copies)"
    conn.execute("begin")
    conn.execute("create temp table base_runs as select * from runs")
    conn.execute("create temp table base_results as select * from results")
    conn.execute("delete from results")
    conn.execute("delete from runs")
    conn.execute(f"insert into runs ({', '.join(run_cols)}) {seq} select "
                 + ", ".join(changed.get(c, f"r.{c}") for c in run_cols)
                 + " from n cross join temp.base_runs r", {"tag": tag, "copies": copies})
    conn.execute(f"insert into results ({', '.join(res_cols)}) {seq} select "
                 + ", ".join("printf('%02x%06x', :tag, n.i) || substr(x.run_id, 9)"
                             if c == "run_id" else f"x.{c}" for c in res_cols)
                 + " from n cross join temp.base_results x", {"tag": tag, "copies": copies})
    conn.execute("commit")
    conn.execute("analyze")
    conn.close()


def commands(db: Path, work: Path, import_file: Path) -> list[tuple[str, list[str]]]:
    d = str(db)
    return [
        ("report", cli("report", "--db", d)),
        ("report --json (all runs)", cli("report", "--db", d, "--json")),
        ("compare --baseline fp32", cli("compare", "--baseline", "fp32", "--db", d)),
        ("compare --baseline fp32 --across-sweeps --json",
         cli("compare", "--baseline", "fp32", "--across-sweeps", "--db", d, "--json")),
        ("plot variants", cli("plot", "variants", "--out", str(work / "v.png"), "--force",
                              "--db", d)),
        ("report --html", cli("report", "--db", d, "--html", str(work / "r.html"), "--force")),
        ("export (json, all runs)", cli("export", str(work / "all.json"), "--force", "--db", d)),
        ("import (10k-run file)", cli("import", str(import_file), "--db", d)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--only", default=None, help="Run only the commands whose name "
                        "contains this text (e.g. compare).")
    parser.add_argument("--workdir", default=None, help="Where the databases go (default: a "
                        "temporary folder, removed afterwards).")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="etameter-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base.db"
    if not base.exists():
        wall, rss, code, _ = measure(cli(*SWEEP, "--db", str(base)))
        if code:
            sys.exit("the real sweep failed")
        print(f"real sweep: {wall:.1f} s", file=sys.stderr)
    source = work / "import-source.db"
    import_file = work / "import-10k.json"
    if not import_file.exists():
        clone(base, source, 10_000, tag=0xAA)
        wall, rss, code, _ = measure(cli("export", str(import_file), "--force", "--db",
                                         str(source)))
        print(f"10k-run export file: {import_file.stat().st_size / 1e6:.0f} MB, written in "
              f"{wall:.1f} s, {rss:.0f} MB RSS", file=sys.stderr)
        source.unlink()
    figures: dict[str, dict[int, str]] = {}
    for tag, size in enumerate(sizes, 1):
        db = work / f"runs-{size}.db"
        start = time.perf_counter()
        clone(base, db, size, tag)
        print(f"{size} runs: built in {time.perf_counter() - start:.1f} s, "
              f"{db.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
        for name, argv in commands(db, work, import_file):
            if args.only and args.only not in name:
                continue
            wall, rss, code, cpu = measure(argv)
            cell = (f"{wall:.2f} s ({cpu:.2f} s CPU), {rss:.0f} MB" if code == 0
                    else f"failed ({code})")
            figures.setdefault(name, {})[size] = cell
            print(f"  {name}: {cell}", file=sys.stderr)
        for leftover in (db, work / "all.json"):
            leftover.unlink(missing_ok=True)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.1f} at the end; "
          "wall time (CPU time of the command) and peak RSS of each command\n")
    print("| command | " + " | ".join(f"{s:,} runs" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, cells in figures.items():
        print(f"| `{name}` | " + " | ".join(cells.get(s, "-") for s in sizes) + " |")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
