"""The attack catalogue: techniques that turn a Behavior into prompts for the target.

Importing this package registers every built-in technique in ``ATTACKS``; one module per
family (``templates``, ``competing``, ``scenario``, ``splitting``, ``encoding``,
``manyshot``, ``translation``, ``multiturn``), so the catalogue reads as a folder.
"""

from sparring.attacks import (
    competing,
    direct,
    encoding,
    manyshot,
    multiturn,
    scenario,
    splitting,
    template_file,
    templates,
    translation,
)
from sparring.attacks.base import (
    ATTACKS,
    FAMILIES,
    Attack,
    AttackContext,
    AttackPrompt,
    HelperError,
    behavior_rng,
    fold_context,
    get_attack,
    list_attacks,
    register,
    request_text,
)
from sparring.attacks.encoding import CODECS, decode
from sparring.attacks.template_file import load_templates

__all__ = [
    "ATTACKS",
    "CODECS",
    "FAMILIES",
    "Attack",
    "AttackContext",
    "AttackPrompt",
    "HelperError",
    "behavior_rng",
    "competing",
    "decode",
    "direct",
    "encoding",
    "fold_context",
    "get_attack",
    "list_attacks",
    "load_templates",
    "manyshot",
    "multiturn",
    "register",
    "request_text",
    "scenario",
    "splitting",
    "template_file",
    "templates",
    "translation",
]
