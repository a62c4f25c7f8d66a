"""Judges: (original intent, conversation) -> Verdict.

- ``rules`` (``RefusalRulesJudge``): fast refusal/compliance rules.
- ``embedded`` (``EmbeddedJudge``, the default): MiniLM + n-gram heads trained on public
  labelled data, offline on CPU; its measured agreement ships with it (``judge_card``).
- ``llamaguard:`` / ``harmbench:`` / ``strongreject:MODEL`` (``LLMJudge``): rubric judges on
  any chat model.
- ``escalate:``, ``majority:``, ``unanimous:``, ``any:`` combine judges.
- ``exact`` (``ExactCheckJudge``): the exact checks of injection, extraction and
  energy-latency attacks, read from each attempt's meta; ``exact:SPEC`` (``RoutedJudge``)
  sends attempts without a check to another judge.

``resolve_judge(spec)`` builds any of these from a spec string; each form is registered
with ``@judge_form`` in its judge's module and listed by ``JUDGE_FORMS``. ``evaluate_judge``
measures a judge against human labels (``load_labelled``, formats in ``LABELLED_FORMATS``);
``train_embedded_judge`` retrains the embedded head.
"""

from sparring.judges.base import Judge, JudgeInput, unscorable
from sparring.judges.calibration import (
    BinaryScores,
    JudgeEvaluation,
    evaluate_judge,
    evaluate_judge_async,
    judge_card,
    save_card,
)
from sparring.judges.embedded import EmbeddedJudge
from sparring.judges.ensemble import EscalationJudge, VoteJudge
from sparring.judges.exact import EXACT_JUDGE_ID, ExactCheckJudge, RoutedJudge
from sparring.judges.head import EMBEDDED_JUDGE_ID
from sparring.judges.labelled import LABELLED_FORMATS, LabelledItem, labelled_format, load_labelled
from sparring.judges.llm import LLMJudge
from sparring.judges.registry import JUDGE_FORMS, JudgeBuild, JudgeForm, judge_form, valid_forms
from sparring.judges.resolve import DEFAULT_JUDGE, JudgeOptions, resolve_judge
from sparring.judges.rubrics import GuardRubric, HarmBenchRubric, Rubric, StrongRejectRubric
from sparring.judges.rules import RULES_JUDGE_ID, RefusalRulesJudge
from sparring.judges.training import TrainingRecord, train_embedded_judge

__all__ = [
    "DEFAULT_JUDGE",
    "EMBEDDED_JUDGE_ID",
    "EXACT_JUDGE_ID",
    "JUDGE_FORMS",
    "LABELLED_FORMATS",
    "RULES_JUDGE_ID",
    "BinaryScores",
    "EmbeddedJudge",
    "EscalationJudge",
    "ExactCheckJudge",
    "GuardRubric",
    "HarmBenchRubric",
    "Judge",
    "JudgeBuild",
    "JudgeEvaluation",
    "JudgeForm",
    "JudgeInput",
    "JudgeOptions",
    "LLMJudge",
    "LabelledItem",
    "RefusalRulesJudge",
    "RoutedJudge",
    "Rubric",
    "StrongRejectRubric",
    "TrainingRecord",
    "VoteJudge",
    "evaluate_judge",
    "evaluate_judge_async",
    "judge_card",
    "judge_form",
    "labelled_format",
    "load_labelled",
    "resolve_judge",
    "save_card",
    "train_embedded_judge",
    "unscorable",
    "valid_forms",
]
