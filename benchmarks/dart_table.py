"""The DART table: base target, MART and DART on the same config, budget and seed.

Runs each method (``--methods``, default ``mart,dart``) from one DART config into one store,
then prints the table (console) and writes it as HTML and JSON. A method whose run with the
very same config is already in the store is reused when it finished and resumed when it
stopped, so the script can be interrupted and run again, and a run made earlier with
``sparring dart --config ... --store ...`` counts. The base row is round 0 of the first
method's run: every method starts from the same target and evaluates on the same held-out
prompts (same seed), and greedy evaluation answers come from the store's completion cache.

Finally it prints whether DART's violation rate on held-out Anthropic Harmless prompts is
below the base target's with non-overlapping 95% intervals, how DART compared to MART, and
what over-refusal did.

With ``--seeds 0,1,...`` it does all of that once per seed (each seed draws its own
training and held-out prompts and samples differently) and ends with the spread: every
seed's rates side by side, rates pooled over the seeds, and in how many seeds each verdict
held. One seed can mislead on a loop this small; the spread shows by how much.

    python benchmarks/dart_table.py [--config configs/dart-cpu-mini.yaml]
        [--store sparring-runs/dart-table.sqlite] [--methods mart,dart] [--seeds 0,1]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from sparring.dart import report
from sparring.dart.config import DartConfig, dart_config, load_dart_config
from sparring.dart.evaluation import relative_reduction
from sparring.dart.loop import run_dart
from sparring.errors import ConfigError
from sparring.report.formatting import estimate_cell, rate_line
from sparring.stats import Rate, newcombe_difference, rate
from sparring.store import RunStore


def find_run(store: RunStore, config: DartConfig) -> tuple[str | None, bool]:
    """The newest stored DART run with this config, and whether it completed. A run stored
    before a field existed matches when the field's legacy value (what that run did) is the
    value asked for, as on resume; fields the method makes moot are not compared
    (``DartConfig.comparable``)."""
    wanted = config.comparable()
    for record in sorted(store.list_runs(), key=lambda r: r.created_at, reverse=True):
        stored = _stored_config(record.config) if record.kind == "dart" else None
        if stored is not None and stored.comparable() == wanted:
            return record.id, "final/red-eval" in store.steps(record.id)
    return None, False


def _stored_config(values: dict[str, Any]) -> DartConfig | None:
    """A stored run's config as it resumes, or None when it no longer validates."""
    try:
        return dart_config(values, "stored run")
    except ConfigError:
        return None


def compare(now: dict[str, Any], base: dict[str, Any]) -> str:
    """How one stored rate sits against another, by their 95% intervals."""
    if now["high"] < base["low"]:
        return "below base with non-overlapping intervals"
    if now["low"] > base["high"]:
        return "ABOVE base with non-overlapping intervals"
    return "intervals overlap"


def stored_line(stored: dict[str, Any]) -> str:
    """A rate of a stored payload or table row as one line of text."""
    return rate_line(Rate.from_dict(stored))


def verdict_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What the acceptance test asks, read off the table rows."""
    by_method = {row["method"]: row for row in rows}
    base = by_method.get("base")
    lines = []
    for method in ("dart", "mart"):
        row = by_method.get(method)
        if base is None or row is None:
            continue
        vr, vr0 = row["vr_held_out"], base["vr_held_out"]
        order = compare(vr, vr0)
        lines.append(
            f"{method}: held-out VR {stored_line(vr)} vs base {stored_line(vr0)}; {order}"
            f"; over-refusal {stored_line(row['over_refusal'])} vs base "
            f"{stored_line(base['over_refusal'])}"
        )
    if "dart" in by_method and "mart" in by_method:
        dart, mart = by_method["dart"]["vr_held_out"], by_method["mart"]["vr_held_out"]
        order = "below" if dart["value"] < mart["value"] else "not below"
        overlap = dart["high"] >= mart["low"] and mart["high"] >= dart["low"]
        lines.append(
            f"dart vs mart: held-out VR {order} MART's "
            f"({'intervals overlap' if overlap else 'intervals separate'})"
        )
    return lines


def announcer(method: str) -> Callable[[str], None]:
    """Print the loop's stage lines, tagged with the method."""
    return lambda line: print(f"[{method}] {line}", flush=True)


async def run_methods(config: DartConfig, store: RunStore, methods: list[str]) -> list[str]:
    """Finish a run per method and return their ids, in the order given."""
    run_ids = []
    for method in methods:
        method_config = config.model_copy(update={"method": method})
        run_id, complete = find_run(store, method_config)
        if complete and run_id is not None:
            print(f"{method}: reusing finished run {run_id}", flush=True)
        else:
            started = time.perf_counter()
            print(f"{method}: {'resuming ' + run_id if run_id else 'new run'}", flush=True)
            run_id = await run_dart(
                method_config,
                store,
                resume=run_id,
                progress=False,
                say=announcer(method),
            )
            print(f"{method}: {run_id} took {time.perf_counter() - started:.0f} s", flush=True)
        run_ids.append(run_id)
    return run_ids


def seed_spread(tables: dict[int, list[dict[str, Any]]]) -> list[str]:
    """Each method's held-out VR and over-refusal (in all and per benign source) per seed
    and pooled over the seeds, by
    every judge that graded all of them (the training judge and ``second_judge``), each
    pooled rate against the base's (``against_base``), and in how many seeds DART was below
    base (separate intervals) and below MART, by the training judge."""
    by_seed = {seed: {row["method"]: row for row in rows} for seed, rows in tables.items()}
    lines = []
    base_pooled: dict[tuple[str | None, str], Rate] = {}
    for method in next(iter(by_seed.values())):
        judged = [rows[method].get("judges") or {} for rows in by_seed.values()]
        judges = [j for j in judged[0] if all(j in seen for seen in judged)] or [None]
        for judge in judges:
            graded = {
                seed: rows[method] if judge is None else rows[method]["judges"][judge]
                for seed, rows in by_seed.items()
            }
            for metric in ("vr_held_out", "over_refusal", *benign_sources(graded.values())):
                rates = {seed: metric_rate(row, metric) for seed, row in graded.items()}
                per_seed = ", ".join(f"{seed}: {r['value']:.1%}" for seed, r in rates.items())
                pooled = rate(
                    sum(r["k"] for r in rates.values()), sum(r["n"] for r in rates.values())
                )
                by = f" by {judge}" if judge is not None else ""
                line = f"{method} {metric}{by}: {per_seed}; pooled {rate_line(pooled)}"
                if method == "base":
                    base_pooled[judge, metric] = pooled
                elif (base := base_pooled.get((judge, metric))) is not None:
                    line += "; " + against_base(metric, base, pooled)
                lines.append(line)
    vr = [{method: row["vr_held_out"] for method, row in rows.items()} for rows in by_seed.values()]
    of = f"of {len(vr)} seeds"
    if all({"dart", "base"} <= m.keys() for m in vr):
        below = sum(m["dart"]["high"] < m["base"]["low"] for m in vr)
        lines.append(f"dart below base with non-overlapping intervals in {below} {of}")
    if all({"dart", "mart"} <= m.keys() for m in vr):
        below = sum(m["dart"]["value"] < m["mart"]["value"] for m in vr)
        lines.append(f"dart's held-out VR below MART's in {below} {of}")
    return lines


def benign_sources(graded: Iterable[Mapping[str, Any]]) -> list[str]:
    """``over_refusal/SOURCE`` for each benign source every one of ``graded`` (a row's
    rates by one judge, per seed) has an over-refusal of."""
    found = [set(g.get("over_refusal_by_source") or {}) for g in graded]
    return [f"over_refusal/{source}" for source in sorted(set.intersection(*found))]


def metric_rate(rates: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """A stored rate by name; ``over_refusal/SOURCE`` is the over-refusal on one source."""
    name, _, source = metric.partition("/")
    found: dict[str, Any] = rates["over_refusal_by_source"][source] if source else rates[name]
    return found


def against_base(metric: str, base: Rate, now: Rate) -> str:
    """A pooled rate against the base's: the relative reduction with its 95% interval for
    a violation rate; for any other rate the change in percentage points with Newcombe's
    interval (which treats the two as independent samples; on the same prompts it is wider
    than a paired interval)."""
    if metric == "vr_held_out":
        return f"reduction vs base {estimate_cell(**relative_reduction(base, now))}"
    if now.value is None or base.value is None:
        return "no answers scored"
    diff, low, high = (100 * x for x in newcombe_difference(base, now))
    return f"{diff:+.1f} points [{low:+.1f}, {high:+.1f}] vs base"


def main() -> None:
    """Parse flags, run or reuse each method per seed, print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/dart-cpu-mini.yaml"))
    parser.add_argument("--store", type=Path, default=Path("sparring-runs/dart-table.sqlite"))
    parser.add_argument("--methods", default="mart,dart", help="Comma-separated methods.")
    parser.add_argument(
        "--seeds", default=None, help="Comma-separated seeds (default: the config's seed)."
    )
    parser.add_argument("--out", type=Path, default=Path("sparring-out/dart-table"))
    args = parser.parse_args()
    config = load_dart_config(args.config)
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [config.seed]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    args.store.parent.mkdir(parents=True, exist_ok=True)
    several = len(seeds) > 1
    tables: dict[int, list[dict[str, Any]]] = {}
    for seed in seeds:
        if several:
            print(f"\nseed {seed}", flush=True)
        seed_config = config.model_copy(update={"seed": seed})
        with RunStore(args.store) as store:
            run_ids = asyncio.run(run_methods(seed_config, store, args.methods.split(",")))
            runs = [report.load_method_run(store, r) for r in run_ids]
        report.render_console(runs, Console(width=160))
        out = args.out / f"seed-{seed}" if several else args.out
        out.mkdir(parents=True, exist_ok=True)
        report.write_html(out / "dart.html", runs)
        (out / "dart.json").write_text(json.dumps(report.to_json(runs), indent=2))
        tables[seed] = report.table_rows(runs)
        for line in verdict_lines(tables[seed]):
            print(line)
        print(f"table written to {out}/ (dart.html, dart.json)", file=sys.stderr)
    if several:
        print(f"\nover seeds {', '.join(map(str, seeds))}")
        for line in seed_spread(tables):
            print(line)


if __name__ == "__main__":
    main()
