"""Judge quality out of source, and judge speed.

For every judge, the agreement on each labelled source when that source was left out of
training entirely (leave-one-source-out). Sources: ``gptfuzz`` (GPTFuzz train + evaluate,
one source) and ``xstest-MODEL`` (each XSTest completion file); see
``sparring.judges.training.labelled_sources``.

- ``rules``: trains on nothing, so every source is out of source for it; the baseline.
- ``embedded@1 settings`` (before): version 1's head settings (harm head on n-grams),
  retrained without each source and scored on it.
- ``embedded@2`` (after): the packaged settings (harm head on evidence features, refusal
  veto), retrained without each source and scored on it.
- ``--judge SPEC`` (repeatable): any other judge (an LLM rubric judge, an ensemble), scored
  as it is on every source; such judges train on none of these sources.

Per source and question (``unsafe?``: harmful compliance; ``refused?``): n, accuracy with
its 95% Wilson interval, Cohen's kappa, precision and recall of yes with Wilson intervals.
Then throughput in verdicts/s on the distinct GPTFuzz responses of at most 200 tokens, with
the embedding cache emptied before each timed pass (best of three), and with a warm cache.

Every setting of the embedded head was chosen on these leave-one-source-out splits (see
``SETTINGS`` in ``training.py``); none was chosen on a split reported as held out.

Run: ``python benchmarks/judge_quality.py`` (data from ``$SPARRING_DATA_DIR``; about 2
minutes on two cores). ``--limit N`` draws N rows per file for a quick run; ``--skip-speed``
leaves out the timing.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sparring.data.locations import data_dir
from sparring.judges import EmbeddedJudge, Judge, JudgeInput, RefusalRulesJudge, resolve_judge
from sparring.judges.calibration import BinaryScores
from sparring.judges.labelled import LabelledItem, load_labelled
from sparring.judges.training import (
    SETTINGS,
    SETTINGS_V1,
    SourceScores,
    Split,
    featurize_sources,
    leave_one_source_out,
    source_scores,
)

MAX_RESPONSE_TOKENS = 200
BATCH = 256


def judge_as_is(judge: Judge, splits: dict[str, Split]) -> dict[str, SourceScores]:
    """Agreement of an untrained (or already trained elsewhere) judge on every source."""
    out = {}
    for name, split in splits.items():
        inputs = [it.input for it in split.items]
        labels = []
        for start in range(0, len(inputs), BATCH):
            verdicts = asyncio.run(judge.judge(inputs[start : start + BATCH]))
            labels.extend(v.label for v in verdicts)
        out[name] = source_scores(split.items, labels)
    return out


def _ci(low_high: tuple[float, float]) -> str:
    return f"[{low_high[0]:.3f},{low_high[1]:.3f}]"


def _line(judge: str, source: str, question: str, s: BinaryScores) -> str:
    return (
        f"{judge:22s} {source:24s} {question:9s} {s.n + s.unscorable:5d} {s.positives:5d} "
        f"{s.accuracy:.3f} {_ci(s.accuracy_ci)} {s.kappa:6.3f} "
        f"{s.precision:.3f} {_ci(s.precision_ci)} {s.recall:.3f} {_ci(s.recall_ci)}"
    )


def print_table(results: dict[str, dict[str, SourceScores]]) -> None:
    """One line per judge, source and question."""
    print(
        f"{'judge':22s} {'source (left out)':24s} {'question':9s} {'n':>5s} {'yes':>5s} "
        f"{'accuracy [95% CI]':19s} {'kappa':>6s} {'precision [95% CI]':19s} "
        f"{'recall [95% CI]':19s}"
    )
    for judge, per_source in results.items():
        for source, scores in per_source.items():
            for question, s in (("unsafe?", scores.harm), ("refused?", scores.refusal)):
                if s is not None:
                    print(_line(judge, source, question, s))


def typical_inputs(judge: EmbeddedJudge, items: list[LabelledItem]) -> list[JudgeInput]:
    """Distinct responses of at most 200 MiniLM tokens."""
    tokenizer = judge.encoder._tokenizer
    seen: set[str] = set()
    out = []
    for item in items:
        text = item.input.response
        if text in seen or not text.strip():
            continue
        seen.add(text)
        if (
            len(tokenizer(text, truncation=False, verbose=False)["input_ids"])
            <= MAX_RESPONSE_TOKENS
        ):
            out.append(item.input)
    return out


def throughput(judge: Judge, inputs: list[JudgeInput], cold: bool) -> float:
    """Best of three timed passes, verdicts per second."""
    best = 0.0
    for _ in range(3):
        if cold and isinstance(judge, EmbeddedJudge):
            judge.encoder.clear_cache()
        start = time.perf_counter()
        asyncio.run(judge.judge(inputs))
        best = max(best, len(inputs) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="rows drawn per file")
    parser.add_argument("--judge", action="append", default=[], help="another judge spec")
    parser.add_argument("--skip-speed", action="store_true", help="skip the timing")
    args = parser.parse_args()
    splits = featurize_sources(data_dir(), limit=args.limit)
    results = {
        "rules (baseline)": judge_as_is(RefusalRulesJudge(), splits),
        "embedded@1 settings": leave_one_source_out(splits, SETTINGS_V1),
        "embedded@2": leave_one_source_out(splits, SETTINGS),
    }
    for spec in args.judge:
        results[spec] = judge_as_is(resolve_judge(spec), splits)
    print("Leave-one-source-out agreement (each source scored by heads trained without it)")
    print_table(results)
    if args.skip_speed:
        return
    embedded = EmbeddedJudge()
    heldout = load_labelled(data_dir() / "gptfuzz" / "responses_labeled_evaluate.csv")
    inputs = typical_inputs(embedded, heldout)
    print(f"\nThroughput on {len(inputs)} responses <= {MAX_RESPONSE_TOKENS} tokens:")
    for name, judge in (("rules", RefusalRulesJudge()), (embedded.id, embedded)):
        cold = throughput(judge, inputs, cold=True)
        warm = throughput(judge, inputs, cold=False)
        print(f"{name:22s} {cold:8.0f} verdicts/s cold cache, {warm:8.0f} verdicts/s warm")


if __name__ == "__main__":
    main()
