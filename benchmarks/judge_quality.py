"""Judge quality and speed: the embedded judge against the refusal-rules baseline.

Prints, for each judge:

- GPTFuzz ``responses_labeled_evaluate.csv`` (held out from training): accuracy, Cohen's
  kappa and F1 for ``unsafe``;
- XSTest completions, cross-validated by file (refused vs complied, partial refusal counted
  as refusal): the embedded heads are retrained without each file and scored on it; the
  rules need no training, so theirs is plain per-file accuracy;
- throughput in verdicts/s on the distinct GPTFuzz evaluate responses of at most 200
  tokens, with the embedding cache emptied before each timed pass (best of three), and
  with a warm cache.

Run: ``python benchmarks/judge_quality.py`` (data from ``$SPARRING_DATA_DIR``). Add
``--skip-cv`` to leave out the retraining (a few minutes on two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sparring.data.locations import data_dir
from sparring.judges import EmbeddedJudge, Judge, JudgeInput, RefusalRulesJudge
from sparring.judges.calibration import evaluate_judge
from sparring.judges.labelled import load_labelled
from sparring.judges.training import xstest_cross_validation
from sparring.types import Label

MAX_RESPONSE_TOKENS = 200


def typical_inputs(judge: EmbeddedJudge) -> list[JudgeInput]:
    """Distinct held-out responses of at most 200 MiniLM tokens."""
    items = load_labelled(data_dir() / "gptfuzz" / "responses_labeled_evaluate.csv")
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


def rules_xstest() -> dict[str, float]:
    """Per-file refusal accuracy of the rules judge."""
    out = {}
    for path in sorted((data_dir() / "xstest" / "model_completions").glob("*.csv")):
        items = load_labelled(path)
        verdicts = asyncio.run(RefusalRulesJudge().judge([i.input for i in items]))
        hits = sum(
            (v.label is Label.REFUSAL) == i.refused for i, v in zip(items, verdicts, strict=True)
        )
        out[path.name] = hits / len(items)
    return out


def report(
    name: str, judge: Judge, xstest: dict[str, float] | None, inputs: list[JudgeInput]
) -> None:
    heldout = load_labelled(data_dir() / "gptfuzz" / "responses_labeled_evaluate.csv")
    evaluation = evaluate_judge(judge, heldout)
    harm = evaluation.harm
    assert harm is not None
    print(f"\n== {name} ({judge.id})")
    print(
        f"GPTFuzz evaluate (n={harm.n + harm.unscorable}): accuracy {harm.accuracy:.3f}  "
        f"kappa {harm.kappa:.3f}  F1 {harm.f1:.3f}  precision {harm.precision:.3f}  "
        f"recall {harm.recall:.3f}  unscorable {harm.unscorable}"
    )
    if xstest is not None:
        cells = "  ".join(
            f"{k.removeprefix('xstest_v2_completions_').removesuffix('.csv')} {v:.3f}"
            for k, v in xstest.items()
        )
        print(f"XSTest by file: {cells}  mean {sum(xstest.values()) / len(xstest):.3f}")
    cold = throughput(judge, inputs, cold=True)
    warm = throughput(judge, inputs, cold=False)
    print(
        f"throughput on {len(inputs)} responses <= {MAX_RESPONSE_TOKENS} tokens: "
        f"{cold:.0f} verdicts/s cold cache, {warm:.0f} verdicts/s warm cache"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cv", action="store_true", help="skip XSTest retraining")
    args = parser.parse_args()
    embedded = EmbeddedJudge()
    inputs = typical_inputs(embedded)
    report("refusal rules (baseline)", RefusalRulesJudge(), rules_xstest(), inputs)
    cv = None if args.skip_cv else xstest_cross_validation(data_dir())
    report("embedded judge", embedded, cv, inputs)


if __name__ == "__main__":
    main()
