"""The attack catalogue: techniques that turn a Behavior into prompts for the target.

One module per family (``templates``, ``competing``, ``scenario``, ``splitting``,
``encoding``, ``manyshot``, ``translation``, ``multiturn``; ``injection_direct``,
``injection_indirect``, ``extraction_prompt``, ``extraction_data`` and ``sponge`` against
the application of ``application``), so the catalogue reads as a folder. Importing this
package imports every module in it, whose ``@register`` decorators fill ``ATTACKS``: adding
a technique is adding one file.
"""

import importlib
import pkgutil

from sparring.attacks.base import (
    ATTACKS,
    FAMILIES,
    Attack,
    AttackChoice,
    AttackContext,
    AttackPrompt,
    HelperError,
    HelperRequest,
    behavior_rng,
    fold_context,
    get_attack,
    helper_answer,
    helper_request,
    list_attacks,
    register,
    request_text,
)
from sparring.attacks.encoding import CODECS, decode
from sparring.attacks.template_file import load_templates

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ATTACKS",
    "CODECS",
    "FAMILIES",
    "Attack",
    "AttackChoice",
    "AttackContext",
    "AttackPrompt",
    "HelperError",
    "HelperRequest",
    "behavior_rng",
    "decode",
    "fold_context",
    "get_attack",
    "helper_answer",
    "helper_request",
    "list_attacks",
    "load_templates",
    "register",
    "request_text",
]
