"""The deterministic emergency layer: hazard phrases in the caller's words, found without a model.

It runs on every user turn before the model is asked, so a gas leak is never waiting on a
cold GPU or a small model's judgement. Rules are regular expressions over normalised text
(lower case, punctuation dropped, so speech-to-text variants like "C.O. alarm" still match),
each with look-alike exclusions ("gas bill", "flood insurance", "smoke detector battery") and
a negation check ("I don't smell gas anymore"). When in doubt a rule errs towards escalating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HAZARDS", "Hazard", "HazardRule", "detect_hazard", "normalise_speech"]

TRANSFER_LINE = "I'm connecting you to our on-call team now."

NEGATORS = frozenset(
    ["no", "not", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "never", "without", "nothing", "cant", "cannot"]
)
RESOLVED_AFTER = re.compile(r"^\W*(\w+\W+){0,3}?(is |has )?(gone|went away|stopped|fixed|resolved|over|out now)\b")


@dataclass(frozen=True, slots=True)
class Hazard:
    """A match: the hazard's category, what to tell the caller, and the words that matched."""

    category: str
    instruction: str
    matched: str


@dataclass(frozen=True, slots=True)
class HazardRule:
    category: str
    instruction: str
    triggers: tuple[re.Pattern[str], ...]
    exclusions: tuple[re.Pattern[str], ...] = ()
    requires: re.Pattern[str] | None = None  # another condition in the same utterance (e.g. cold weather)
    check_negation: bool = True


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


COLD = re.compile(
    r"\b(freez\w*|froze|frozen|below zero|sub ?zero|icy|ice|snow\w*|blizzard|(so|really|very|extremely|bitter\w*|"
    r"too|freezing) cold|cold (in here|snap|out)|its cold|hypotherm\w*|baby|infant|newborn|elderly|oxygen|"
    r"(?:[0-3]?\d|4[0-5]) degrees)\b"
)

HAZARDS: tuple[HazardRule, ...] = (
    HazardRule(
        "gas",
        "If you smell gas, please leave the unit right now without touching light switches or appliances, "
        "and call 911 or the gas company once you're outside. " + TRANSFER_LINE,
        _rx(
            r"\b(smell|smells|smelling|smelled|smelt|whiff|odou?r|reeks?|stinks?)\b(\s+\w+){0,4}?\s+(natural )?gas\b",
            r"\bgas\s+(smell|odou?r|leak|leaking|is leaking|escaping)\b",
            r"\b(leaking|leaky) gas\b",
            r"\brotten eggs?\b",
            r"\bhiss\w*\b(\s+\w+){0,4}?\s+(gas|stove|meter|gas line)\b",
        ),
        _rx(r"\bgas (bill|station|prices?|money|mileage|card|company bill)\b"),
    ),
    HazardRule(
        "carbon_monoxide",
        "Please get everyone out into fresh air right away and call 911 from outside. " + TRANSFER_LINE,
        _rx(r"\bcarbon monoxide\b", r"\b(c ?o|co2|see oh) (alarm|detector|monitor|sensor)\b"),
        # Maintenance talk (batteries, a replacement) clears the rule unless the alarm is sounding.
        _rx(
            r"^(?!.*\b(going off|went off|sounding|ringing|blaring|beeping|headaches?|dizzy|nause\w*)\b)"
            r".*\b(batter(y|ies)|replac\w*|install\w*|buy\w*|new one|test\w*|inspection)\b.*$"
        ),
    ),
    HazardRule(
        "fire",
        "Please get out of the building now, don't use the elevator, and call 911 from outside. " + TRANSFER_LINE,
        _rx(
            r"\b(on fire|caught fire|catching fire|fire (is )?spreading|theres a fire|there is a fire|a fire in|"
            r"house fire|kitchen fire|apartment fire|building fire|flames?)\b",
            r"\b(smell|smells|smelling|see|seeing|saw) (\w+ )?smoke\b",
            r"\bsmoke (is )?(coming|pouring|filling|everywhere|in the|from the|under the)\b",
            r"\b(full of|lots of|so much|thick) smoke\b",
            r"\b(fire|smoke) (alarms?|detectors?) (is |are )?(going off|sounding|ringing|blaring|wont stop)\b",
            r"\b(burning (smell|odou?r)|smells? (like )?(something )?burning)\b",
        ),
        _rx(
            r"\bfire (pit|drill|escape|extinguisher|department inspection|marshal|code|insurance|sale|stick|tv|"
            r"wood|works|place|proof\w*)\b",
            r"\b(smoke|fire) (alarm|alarms|detector|detectors)\b(?!.*\b(going off|sounding|ringing|blaring|wont stop))",
            r"\b(batter(y|ies)|chirp\w*)\b(?!.*\b(smoke (is )?coming|fire|flames?))",
        ),
    ),
    HazardRule(
        "flood",
        "If you can do it safely, turn off the water at the shut-off valve and keep away from outlets and anything "
        "electrical near the water. " + TRANSFER_LINE,
        _rx(
            r"\bflood(ing|ed|s)?\b",
            r"\b(burst|broken|busted|exploded|split) (water )?pipes?\b",
            r"\bpipes? (has |have |just )?(burst|broke|exploded|bursting|split)\b",
            r"\bwater (is |s )?(everywhere|pouring|gushing|spraying|rushing|coming (in|through|down))\b",
            r"\bwater (\w+ ){0,2}(from|through) the ceiling\b",
            r"\b(sewage|sewer)\b(\s+\w+){0,3}?\s+(back\w*|overflow\w*|coming up|everywhere)\b",
        ),
        _rx(
            r"\bflood (insurance|zone|plain|light|lights|lamp)\b",
            r"\bfloodlights?\b",
            r"\bflooded with (?!water|sewage)\w+",
            r"\binbox\b",
        ),
    ),
    HazardRule(
        "no_heat",
        "I'm sorry you're without heat in this cold. Please keep warm, and don't use the oven or a grill to heat "
        "the unit. " + TRANSFER_LINE,
        _rx(
            r"\bno heat(ing)?\b(?! (issues?|problems?))",
            r"\bheat (isnt|is not|not|wont|will not) (working|on|come on|turn on)\b",
            r"\bheat (is |s )?(off|out|broken|dead|gone)\b",
            r"\bheat (went|goes|has gone|just went) (out|off)\b",
            r"\b(heater|heating|furnace|boiler|radiators?)\b (is |s |just |has )?(broken|broke|out|dead|died|off|"
            r"stopped|quit|not working|isnt working|wont (work|turn on|come on|start))\b",
        ),
        requires=COLD,
        check_negation=False,
    ),
    HazardRule(
        "electrical",
        "Please stay away from the outlet or wires and don't touch them. If you see smoke or flames, leave and "
        "call 911. " + TRANSFER_LINE,
        _rx(
            r"\b(spark|sparks|sparking|sparked)\b(?=.*\b(outlet|socket|wire|wires|wiring|panel|breaker|switch|"
            r"plug|electrical|light|fixture|box|cord)\b)",
            r"\b(outlet|socket|wire|wires|wiring|panel|breaker|switch|plug|cord)\b.*\b(spark|sparks|sparking|sparked)\b",
            r"\b(exposed|bare|live|dangling|frayed|burnt|burned|burning|melted|melting|sparking) "
            r"(electrical |electric )?(wire|wires|wiring)\b",
            r"\belectrical fire\b",
            r"\b(outlet|socket|panel|breaker box|switch|plug) (is |s )?(smoking|burning|melting|melted|scorched|"
            r"on fire|too hot to touch)\b",
            r"\b(electrocut\w*|shocked me)\b",
            r"\bgot (a |an )?(electric )?shock(ed)?\b(?=.*\b(outlet|socket|switch|wire|panel|appliance|light|"
            r"electric\w*|plug)\b)",
        ),
        _rx(r"\bspark plugs?\b"),
    ),
)


def normalise_speech(text: str) -> str:
    """Lower case, apostrophes dropped (`don't` → `dont`), other punctuation to spaces, spaces collapsed."""
    lowered = text.lower().replace("’", "'").replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", lowered).split())


def _negated(text: str, start: int, end: int) -> bool:
    before = text[:start].split()[-3:]
    if any(word in NEGATORS for word in before):
        return True
    return bool(RESOLVED_AFTER.match(text[end:]))


def _rule_matches(rule: HazardRule, text: str) -> str | None:
    if rule.requires is not None and not rule.requires.search(text):
        return None
    if any(x.search(text) for x in rule.exclusions):
        # An exclusion clears the rule only when no trigger lies outside the excluded phrase.
        cleared = text
        for x in rule.exclusions:
            cleared = x.sub(" ", cleared)
        text = cleared
    for pattern in rule.triggers:
        for match in pattern.finditer(text):
            if rule.check_negation and _negated(text, match.start(), match.end()):
                continue
            return match.group(0)
    return None


def detect_hazard(text: str) -> Hazard | None:
    """The first hazard the caller's words describe, or None."""
    spoken = normalise_speech(text)
    if not spoken:
        return None
    for rule in HAZARDS:
        matched = _rule_matches(rule, spoken)
        if matched is not None:
            return Hazard(rule.category, rule.instruction, matched)
    return None
