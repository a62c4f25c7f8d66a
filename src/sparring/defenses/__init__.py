"""Defenses: guards that wrap any ChatModel, and ``sparring defend``, which measures them.

A guard is one module in ``guards/`` registered with ``@register`` (``registry``); a stack
of guards around a model is a ``DefendedModel`` (``model``), reachable from any model spec
as ``defended/STACK/SPEC`` (``provider``). A blocked request is answered with a refusal
marked in its ``Completion.meta`` (``base.GuardRecord``), with every model call the guards
made for it. ``evaluation`` runs the same attacks and benign prompts against the target
with and without each defense and reports attack success, over-refusal, latency and calls
side by side, with the Pareto-optimal defenses marked; ``adaptive`` runs red-team methods
against each arm as well.

This package is imported by the models layer's provider lookup, so importing it loads
nothing else: import its modules.
"""
