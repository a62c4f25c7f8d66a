"""DART (arXiv 2407.03876 v1) and MART: red-team the target and harden it, round by round.

``loop.run_dart`` runs or resumes a run; the stages live in ``attack_writing``,
``target_eval``, ``red_training`` and ``target_training``, sharing a ``context.DartRun``.
"""
