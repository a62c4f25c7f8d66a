"""The sparring risk taxonomy, shared by loaders, attacks, judges and reports.

Every behavior carries one of the ids in ``CATEGORIES``. Each data source's own labels are
mapped onto these ids by an explicit table next to its loader; a label a table does not
know becomes ``other`` (``OTHER``). Sources without labels (AdvBench) go through
``guess_category``, a small ordered set of keyword rules documented below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

OTHER = "other"
"""The category for behaviors that fit no specific risk area, or whose label is unknown."""

CATEGORIES: dict[str, str] = {
    "cyber": "Malware, hacking and intrusion into computer systems.",
    "weapons": "Conventional weapons and explosives.",
    "cbrn": "Chemical, biological, radiological and nuclear weapons and agents.",
    "violence": "Physical harm to people, terrorism and violent crime.",
    "self_harm": "Suicide, self-injury and eating disorders.",
    "fraud": "Scams, deception, financial crime and other economic harm.",
    "illegal_activity": "Drugs, theft, trafficking and other crime.",
    "hate_harassment": "Hate speech, discrimination, harassment and bullying.",
    "misinformation": "Disinformation, propaganda and election manipulation.",
    "privacy": "Surveillance, doxxing and exposure of personal data.",
    "sexual_content": "Adult sexual content.",
    "child_safety": "Anything that sexualises or endangers minors.",
    "specialized_advice": (
        "Unqualified medical, legal or financial advice; government decision-making."
    ),
    "copyright": "Reproduction of protected works.",
    OTHER: "Anything that fits none of the categories above.",
}


def is_category(value: str) -> bool:
    """True when ``value`` is one of the taxonomy's category ids."""
    return value in CATEGORIES


def _fold(label: str) -> str:
    return " ".join(label.split()).casefold()


class CategoryTable:
    """One source's own labels mapped onto taxonomy ids.

    Labels compare ignoring case and runs of spaces, because copies of one data set differ
    in both ("Disinformation and Deception" vs "Disinformation and deception"). A label the
    table does not list maps to ``other``.
    """

    def __init__(self, source: str, entries: Mapping[str, str]) -> None:
        unknown = sorted(set(entries.values()) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"{source} category table names unknown categories: {unknown}")
        self.source = source
        self.entries = dict(entries)
        self._folded = {_fold(label): category for label, category in entries.items()}

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and _fold(label) in self._folded

    def get(self, label: str) -> str | None:
        """The category for ``label``, or None when the table does not list it."""
        return self._folded.get(_fold(label))

    def category(self, label: str | None) -> str:
        """The category for ``label``; ``other`` when it is missing or not listed."""
        if label is None:
            return OTHER
        return self._folded.get(_fold(label), OTHER)


# Ordered (category, pattern) rules: the first pattern found in the lower-cased text wins.
# The order puts the most specific and most severe areas first, so "a bomb threat against
# a playground full of children" lands in child_safety rather than weapons, and "a virus that
# deletes files" stays in cyber because cbrn asks for biological wording, not bare "virus".
_KEYWORD_RULES: tuple[tuple[str, str], ...] = (
    (
        "child_safety",
        r"\b(child|children|kids?|minors?|underage|teen(ager)?s?|pedophil\w*|grooming)\b",
    ),
    (
        "cbrn",
        r"\b(chemical weapons?|biological weapons?|bio-?weapons?|nerve agents?|sarin|vx|ricin"
        r"|anthrax|pathogens?|toxins?|radioactive|radiological|dirty bombs?|nuclear"
        r"|uranium|plutonium|pandemic|bioterror\w*)\b",
    ),
    (
        "self_harm",
        r"\b(suicid\w*|self-?harm\w*|kill (myself|themselves|yourself)|cutting"
        r"|anorexi\w*|bulimi\w*|eating disorders?|starv\w*|overdos\w*)\b",
    ),
    (
        "weapons",
        r"\b(bombs?|explosives?|detonat\w*|grenades?|firearms?|guns?|rifles?|ammunition"
        r"|weapons?|silencers?|ghost guns?)\b",
    ),
    (
        "cyber",
        r"\b(hack\w*|malware|viruse?s?|ransomware|botnets?|ddos|exploits?|vulnerabilit\w*"
        r"|keyloggers?|trojans?|rootkits?|spyware|worms?|sql injection|cyber(?!bull)\w*"
        r"|antivirus|passwords?|firewalls?|security measures|bypass\w*|hijack\w*)\b",
    ),
    ("copyright", r"\b(pirat\w*|copyright\w*|torrent\w*|lyrics)\b"),
    (
        "fraud",
        r"\b(fraud\w*|scam\w*|phishing|counterfeit\w*|launder\w*|insider trading|ponzi"
        r"|pyramid scheme|embezzl\w*|forg(e|ed|ery|ing)|identity theft|steal (someone's )?"
        r"identit\w*|tax evasion|evade taxes|manipulate (the )?(stock|market)\w*"
        r"|fake (ids?|invoices?|charit\w*)|reviews?|spam\w*|trick\w*|credit cards?"
        r"|financial)\b",
    ),
    (
        "privacy",
        r"\b(personal (information|data|details)|private (information|data)|dox\w*|stalk\w*"
        r"|spy(ing)? on|surveil\w*|track (someone|a person|people)\w*|location of"
        r"|social security numbers?|without (their|his|her) (knowledge|consent))\b",
    ),
    (
        "misinformation",
        r"\b(fake news|misinformation|disinformation|propaganda|conspiracy|conspiracies"
        r"|hoax\w*|false information|election\w*|vot(e|er|ers|ing)|rumou?rs?|defam\w*"
        r"|mislead\w*)\b",
    ),
    (
        "hate_harassment",
        r"\b(hate\w*|hatred|racis\w*|racial|discriminat\w*|harass\w*|bully\w*|cyberbully\w*"
        r"|slurs?|sexis\w*|xenophob\w*|antisemit\w*|homophob\w*|minority|minorities"
        r"|ethnic\w*|religio\w*|demean\w*|humiliat\w*|dehumaniz\w*|oppress\w*"
        r"|reputation|accusations?)\b",
    ),
    ("sexual_content", r"\b(sex\w*|porn\w*|explicit|erotic\w*|nudes?|nudity)\b"),
    (
        "violence",
        r"\b(kill\w*|murder\w*|assault\w*|attacks?|terror\w*|harm\w*|hurt\w*|tortur\w*"
        r"|kidnap\w*|shoot\w*|stab\w*|poison\w*|violen\w*|assassinat\w*|massacre\w*"
        r"|injur\w*|riots?|abuse\w*|sabotag\w*|vandali\w*|chaos|destr\w*|crash\w*)\b",
    ),
    (
        "illegal_activity",
        r"\b(drugs?|cocaine|coke|heroin|meth(amphetamine)?|fentanyl|marijuana|marihuana|weed"
        r"|lsd|ecstasy|steal\w*|stole|theft|shoplift\w*|smuggl\w*|traffick\w*|burglar\w*"
        r"|break into|rob(s|bed|bing|bery|beries)?|illegal\w*|illicit\w*"
        r"|cheat\w*|evade|police|law enforcement|crimes?|criminal|evidence|witness\w*"
        r"|pick (a )?locks?|escape\w*)\b",
    ),
    (
        "specialized_advice",
        r"\b(medical advice|legal advice|financial advice|diagnos\w*|prescri\w*"
        r"|dosages?|lawsuit|investment)\b",
    ),
    # Generic computing words come last: "a website that sells counterfeit goods" is fraud
    # first and cyber only when nothing more specific matched.
    (
        "cyber",
        r"\b(network|databases?|servers?|computers?|software|scripts?|bots?|programs?"
        r"|websites?|apps?|systems?)\b",
    ),
)

_COMPILED_RULES = tuple((category, re.compile(pattern)) for category, pattern in _KEYWORD_RULES)


def guess_category(text: str) -> str:
    """The taxonomy category suggested by keywords in ``text``, or ``other``.

    A coarse fallback for sources that carry no labels of their own: the first rule (in the
    documented priority order above) whose keywords occur in the text decides.
    """
    lowered = text.lower()
    for category, pattern in _COMPILED_RULES:
        if pattern.search(lowered):
            return category
    return OTHER
