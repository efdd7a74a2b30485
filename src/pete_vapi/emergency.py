"""The deterministic emergency layer: hazard phrases in the caller's words, found without a model.

It runs on every user turn before the model is asked, so a gas leak is never waiting on a
cold GPU or a small model's judgement. The words are normalised once into tokens (lower case,
fillers and stutters dropped, "C.O." → "co"), with sentence and clause punctuation kept as
"." and "," tokens. Each rule's patterns are short token sequences over stem sets
(a hazard word plus a hazard cue, "smell … gas", "water … pouring"), matched left to right
with bounded gaps, so the work is linear in the tokens and the tokens are bounded by
`MAX_SCAN_CHARS`. A negator cancels a match only inside its own clause and only when it
scopes the hazard ("there is no gas leak"), never across a comma, "but", "and", "so", a full
stop or a new subject ("no the pipe burst", "it's not a drill there is a fire"). When in
doubt a rule errs towards transferring. See docs/safety.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

__all__ = [
    "HAZARDS",
    "MAX_SCAN_CHARS",
    "TRANSFER_LINE",
    "Hazard",
    "HazardRule",
    "Scan",
    "TokenPattern",
    "detect_hazard",
    "normalise_speech",
    "scan_turn",
    "scanned_text",
]

TRANSFER_LINE = "I'm connecting you to our on-call team now."

# Only this much of a turn is read: the first HEAD and the last (newest) TAIL characters.
# A minute of speech is ~900 characters, so real turns are read whole; a hostile one is cut.
HEAD_CHARS = 500
TAIL_CHARS = 1500
MAX_SCAN_CHARS = HEAD_CHARS + TAIL_CHARS

SENTENCE, CLAUSE = ".", ","


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


FILLERS = _words("um umm uh uhh uhm er erm ah ahh hmm hm mm mhm like")
NEGATORS = _words(
    "no not dont doesnt didnt isnt arent wasnt werent never without nothing cant cannot wont aint hasnt havent "
    "none nobody neither nor"
)
# Words that end a negator's scope: conjunctions and the start of a new clause without punctuation.
SCOPE_ENDS = _words(
    "but and so because cause cuz though although plus then or except when while if theres there i im ive id "
    "we its it he hes she shes they theyre you youre this that now wait actually oh please help yes yeah ok "
    "okay well"
)
# Verbs whose negation is a hedge about the speaker, not about the hazard ("I don't know, ...").
HEDGES = _words("know sure think mean care remember understand")
# After "no", these show an interjection ("no the pipe burst"), not a quantifier ("no gas leak").
NOT_QUANTIFIED = _words("the a an my our your his her their this that no")
SCOPE_TOKENS = 4
RESOLUTION_WINDOW = 12

_APOSTROPHES = str.maketrans("", "", "'’‘`´")
_ACRONYM = re.compile(r"\b([a-z])\. ?([a-z])\b\.?")  # "c.o." / "c. o" → "co"; fixed width, no backtracking
_TOKEN = re.compile(r"[a-z0-9]+|[.!?]|[,;:—–]")


@dataclass(frozen=True, slots=True)
class Hazard:
    """A match: the hazard's category, what to tell the caller, and the words that matched."""

    category: str
    instruction: str
    matched: str


# --- token patterns ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Element:
    kind: str  # "word" | "gap" | "not_next" | "not_prev" | "start"
    words: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    gap: int = 0

    def accepts(self, token: str) -> bool:
        return token in self.words or any(token.startswith(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class TokenPattern:
    """A compiled pattern: `a|b*` alternatives (`*` = stem), `~N` skip ≤ N words in the sentence,
    `-a|b` the next word is none of these, `<a|b` (first) the word before is none of these,
    `^` (first) at the start of a clause."""

    source: str
    elements: tuple[_Element, ...]
    first: _Element  # the first element that reads a word: what the index and the quick check look at

    @classmethod
    def compile(cls, source: str) -> TokenPattern:
        elements: list[_Element] = []
        for part in source.split():
            kind = "word"
            if part == "^":
                elements.append(_Element("start"))
                continue
            if part.startswith("~"):
                elements.append(_Element("gap", gap=int(part[1:])))
                continue
            if part[0] in "-<":
                kind, part = ("not_next" if part[0] == "-" else "not_prev"), part[1:]
            alternatives = part.split("|")
            words = frozenset(a for a in alternatives if not a.endswith("*"))
            prefixes = tuple(a[:-1] for a in alternatives if a.endswith("*"))
            elements.append(_Element(kind, words, prefixes))
        return cls(source, tuple(elements), next(e for e in elements if e.kind == "word"))

    def match_at(self, tokens: list[str], start: int, steps: list[int]) -> tuple[int, ...] | None:
        """Token positions the words matched when the pattern starts at `start`, or None."""
        if start >= len(tokens) or not self.first.accepts(tokens[start]):
            return None
        return _match(self.elements, 0, tokens, start, (), steps)


def _match(
    elements: tuple[_Element, ...], k: int, tokens: list[str], i: int, got: tuple[int, ...], steps: list[int]
) -> tuple[int, ...] | None:
    steps[0] += 1
    if k == len(elements):
        return got
    element = elements[k]
    if element.kind == "start":
        ok = i == 0 or tokens[i - 1] in (SENTENCE, CLAUSE)
        return _match(elements, k + 1, tokens, i, got, steps) if ok else None
    if element.kind == "not_prev":
        ok = i == 0 or not element.accepts(tokens[i - 1])
        return _match(elements, k + 1, tokens, i, got, steps) if ok else None
    if element.kind == "not_next":
        ok = i >= len(tokens) or not element.accepts(tokens[i])
        return _match(elements, k + 1, tokens, i, got, steps) if ok else None
    if element.kind == "gap":
        for skip in range(element.gap + 1):  # bounded: at most gap + 1 branches
            j = i + skip
            if j > len(tokens) or (skip and tokens[j - 1] == SENTENCE):
                return None
            found = _match(elements, k + 1, tokens, j, got, steps)
            if found is not None:
                return found
        return None
    if i < len(tokens) and element.accepts(tokens[i]):
        return _match(elements, k + 1, tokens, i + 1, (*got, i), steps)
    return None


def _p(*sources: str) -> tuple[TokenPattern, ...]:
    return tuple(TokenPattern.compile(s) for s in sources)


@dataclass(frozen=True, slots=True)
class HazardRule:
    """One category: `strong` patterns always count; `patterns` count unless an `unless` match
    overlaps them (a look-alike such as "gas bill"); `requires` must also hold in the turn."""

    category: str
    instruction: str
    strong: tuple[TokenPattern, ...] = ()
    patterns: tuple[TokenPattern, ...] = ()
    unless: tuple[TokenPattern, ...] = ()
    requires: tuple[TokenPattern, ...] = ()
    index: dict[str, tuple[tuple[TokenPattern, bool], ...]] = field(default_factory=dict, compare=False)


# --- stems shared by rules -----------------------------------------------------------------
SMELL = "smell*|smelt|stink*|stank|reek*|odor*|odour*|whiff|fume*|scent"
SOUNDING = "sound*|beep*|ring*|blar*|scream*|wail*|shriek*|alert*|read*|says|flash*|trigger*"
GOING_OFF = "going|goes|went|gone|keeps|go ~0 off"
WONT_STOP = "wont|doesnt|didnt|cant|never ~0 stop*|shut|quit"
CO = ("co", "co2", "monoxide", "carbon monoxide", "c o", "see oh", "carbon")
DETECTOR = "alarm*|detector*|detecter*|monitor*|sensor*|thing"
MAINTENANCE = "batter*|replac*|install*|inspect*|test*|chirp*|buy*|provid*|new|need*|expired|check*"
WATER = "water|sewage|sewer|toilet*|tub|bathtub"
# Not leak*: a dripping sink is a ticket, not an emergency.
FLOWING = "everywhere|pour*|gush*|rush*|spray*|flowing|flood*|overflow*|bubbl*"
SPOKEN_VERB_BEFORE_FIRE = "to|should|gonna|will|would|can|could|please|lets|must|just|cant|you|they|we|i|shall"
FIRE_COMPOUNDS = (
    "drill*|pit*|escape*|extinguish*|inspect*|code*|insurance|marshal*|sale|stick|tv|lane|hydrant*|exit*|door*|"
    "hazard*|safety|department|dept|proof*|rated|place*|wood|work*|fighter*|alarm*|detector*|sprinkler*|truck*|"
    "station|hose*|up|ant*|starter*|regulation*|rule*|plan|route|evacuation|away|pit"
)
ELECTRIC_THING = "outlet*|socket*|plug|plugs|panel|breaker*|switch*|wire*|wiring|cord*|fuse*|fixture*|meter|box"
PERSON = (
    "someone|somebody|person|people|he|hes|she|shes|they|theyre|kid|kids|child|son|daughter|man|woman|neighbor*|"
    "guy|lady|wife|husband|tenant|worker|mom|dad|mother|father|baby|grandma|grandpa|im|friend|roommate"
)
INTRUDER = "someone|somebody|guy|man|men|woman|person|people|they|stranger*|thief|thieves|burglar*|intruder*"
PLACE = "apartment|unit|house|home|room|bedroom|place|condo|garage|car|cars|storage|basement|building"
HEATER = "heat|heater*|heating|furnace|boiler|radiator*"
COLD_NUMBERS = "|".join(str(n) for n in range(46))


def _co(tail: str) -> tuple[str, ...]:
    return tuple(f"{word} {tail}" for word in CO)


HAZARDS: tuple[HazardRule, ...] = (
    HazardRule(
        "gas",
        "If you smell gas, please leave the unit right now without touching light switches or appliances, "
        "and call 911 or the gas company once you're outside. " + TRANSFER_LINE,
        strong=_p("rotten egg|eggs", f"sulfur|sulphur ~3 {SMELL}", f"{SMELL} ~3 sulfur|sulphur"),
        patterns=_p(
            f"{SMELL} ~4 gas|propane|methane",
            f"gas|propane ~2 {SMELL}|leak*|hiss*|escap*",
            "leak*|hiss*|escap* ~2 gas|propane",
            "hiss* ~4 stove|meter|line",
            "gas|propane ~1 line*|pipe*|valve*|meter*|stove*|tank ~4 hiss*|leak*",
        ),
        unless=_p("gas bill*|station*|price*|mileage|money|card|company|companies|tank|fee*|charge*", "out of gas"),
    ),
    HazardRule(
        "carbon_monoxide",
        "Please get everyone out into fresh air right away and call 911 from outside. " + TRANSFER_LINE,
        strong=_p(
            *_co(f"~1 {DETECTOR} ~6 {SOUNDING}|level*|high"),
            *_co(f"~1 {DETECTOR} ~6 {WONT_STOP}"),
            *_co(f"~1 {DETECTOR} ~6 {GOING_OFF}"),
            *_co("~4 poison*|level*|leak*"),
            "carbon monoxide ~6 dizzy|headache*|sick|nause*|faint*",
        ),
        patterns=_p(f"carbon monoxide -{DETECTOR}", f"monoxide -{DETECTOR}"),
        unless=_p(
            f"monoxide|co|co2 ~1 {DETECTOR} ~5 {MAINTENANCE}",
            f"{MAINTENANCE}|get|have ~4 carbon|monoxide|co|co2",
        ),
    ),
    HazardRule(
        "electrical",
        "Please stay away from the outlet or wires and don't touch them. If you see smoke or flames, leave and "
        "call 911. " + TRANSFER_LINE,
        strong=_p(
            f"{ELECTRIC_THING} ~4 smok*|burn*|melt*|scorch*|sizzl*|charred|spark*|arc*|popped|popping|bang*",
            f"{ELECTRIC_THING} ~3 on fire",
            f"{ELECTRIC_THING} ~3 hot ~0 to|and",
            "electrical|electric ~2 fire|smell*|burn*|smoke|smoking",
            f"burn*|burnt ~2 plastic|rubber|electrical|wire*|wiring ~0 {SMELL}",
            "power line*|lines ~3 down|fell|fallen|spark*|arc*",
        ),
        patterns=_p(
            "spark|sparks|sparking|sparked|sparky|arcing",
            "exposed|bare|live|dangling|frayed|burnt|burned|burning|melted|melting|sparking|hanging|downed ~2 "
            "wire*|wiring|cable*",
            "electrocut*",
            f"shock*|zap* ~5 {ELECTRIC_THING}|light*|appliance*|fridge|stove|washer|dryer|faucet",
            f"{ELECTRIC_THING}|light*|appliance*|fridge|stove|washer ~4 shock*|zap*",
        ),
        unless=_p("spark plug*|plugs"),
    ),
    HazardRule(
        "fire",
        "Please get out of the building now, don't use the elevator, and call 911 from outside. " + TRANSFER_LINE,
        strong=_p(
            f"smoke|fire alarm*|alarms|detector*|sprinkler* ~6 {SOUNDING}",
            f"smoke|fire alarm*|alarms|detector*|sprinkler* ~6 {WONT_STOP}",
            f"smoke|fire alarm*|alarms|detector*|sprinkler* ~6 {GOING_OFF}",
            "caught|catching|catch|set|sets ~1 fire|ablaze|alight",
            "flames|ablaze|inferno",
            "full ~0 of ~0 smoke",
        ),
        patterns=_p(
            f"<{SPOKEN_VERB_BEFORE_FIRE} fire|fires|blaze -{FIRE_COMPOUNDS}",
            "flame|flaming",
            f"alarm*|alarms ~6 {GOING_OFF}",
            f"alarm*|alarms ~6 {SOUNDING}",
            f"alarm*|alarms ~6 {WONT_STOP}",
            f"smoke|smokes -detector*|detecter*|alarm*|free|shop|break|weed|pot|cigarette*|cigar*|signal*|show|{SMELL}",
            f"smoke {SMELL}",
            "smoky|smokey",
            f"burning|burnt|burned ~0 {SMELL}",
            f"{SMELL} ~3 burn*",
            "something|somethings ~2 burn*",
            "is|are|s|its|was|were|thats burning -up",
        ),
        unless=_p(
            "im|youre|hes|shes|were|theyre|team ~0 on fire ~2 today|lol|haha|lmao|lately|tonight|this|streak",
            "^ fire the|my|him|her|them|that|this|your|our|his|their|somebody|someone|everyone|everybody",
            f"{SPOKEN_VERB_BEFORE_FIRE}|can|may|allowed|people|dont ~0 smoke|smokes",
            "smoke|smoky|smokey ~6 barbecue|bbq|grill*|cigarette*|cigar*|toast|incense|candle*|weed|pot|vape*",
            "barbecue|bbq|grill*|cigarette*|cigar*|toast|incense|candle*|weed|vape* ~6 smoke|smoky|smokey",
            "cease ~0 fire",
            "car|cars|clock|phone|security|burglar|door|doors|snooze|my|set|setting|wake ~0 alarm*|alarms",
            "insur*|polic*|coverage ~4 fire|fires",
            "fire|fires ~2 insur*|coverage|polic*|damage ~0 coverage",
            "fire ~0 and ~0 theft",
        ),
    ),
    HazardRule(
        "flood",
        "If you can do it safely, turn off the water at the shut-off valve and keep away from outlets and anything "
        "electrical near the water. " + TRANSFER_LINE,
        strong=_p(
            "burst|broken|busted|exploded|split|cracked|broke|popped|bursting ~2 pipe*|water|main|hose|line",
            "pipe*|main|hose ~3 burst*|broke|broken|busted|exploded|split|popped|cracked|bust",
            f"{WATER} ~4 {FLOWING}",
            "water ~2 coming ~0 in|down|through|up|out|from|into",
            "water ~3 through|from ~2 the|my ~0 ceiling|light*|fixture*|wall*|outlet*|floor",
            "leak* ~3 through|from ~2 the|my ~0 ceiling|light*|fixture*",
            "leak* ~1 all ~0 over",
            "water ~2 all ~0 over",
            "inch*|inches|feet|foot ~1 of ~0 water|sewage",
            "standing water",
            "ceiling ~3 collaps*|cav*|fell|falling|caving",
            "ceiling|drywall ~3 bulg*|sag*|bubbl*|bow*",
            "sewage|sewer|septic ~4 back*|overflow*|coming|everywhere|flood*|pour*|bubbl*|up",
            f"toilet*|tub|bathtub|sink|washer|drain*|shower ~3 overflow*|{FLOWING}",
        ),
        patterns=_p("flood|flooding|flooded|floods", "sewage"),
        unless=_p(
            "flood ~0 insurance|zone|plain*|light*|lamp*|warning*|watch*|zones",
            "insur*|polic*|coverage ~4 flood*",
            "floodlight*",
            "flooded|flooding ~0 with -water|sewage",
            "inbox|email*|call*|messages|texts ~3 flood*",
            "flood* ~3 email*|call*|messages|texts|inbox|applications|complaints",
            "sewage|sewer ~0 fee*|bill*|charge*|rate*",
        ),
    ),
    HazardRule(
        "no_heat",
        "I'm sorry you're without heat in this cold. Please keep warm, and don't use the oven or a grill to heat "
        "the unit. " + TRANSFER_LINE,
        patterns=_p(
            "no heat|heating -issue*|problem*|complaint*|bill*",
            "without ~1 heat|heating",
            f"{HEATER} ~3 out|off|broken|broke|dead|died|stopped|quit|gone|failed|down|cold",
            f"{HEATER} ~3 not|isnt|wont|doesnt|aint|stopped ~2 work*|on|come|start|turn|running|heat*",
        ),
        requires=_p(
            "freez*|froze|frozen|icy|ice|snow*|blizzard|hypotherm*|frostbite|baby|babies|infant*|newborn*|elderly|"
            "oxygen|winter|cold|chilly|zero|below|minus|negative",
            f"{COLD_NUMBERS} ~0 degree*",
        ),
    ),
    HazardRule(
        "intruder",
        "If you can, get somewhere safe and lock the door, and call 911. " + TRANSFER_LINE,
        strong=_p(
            f"{INTRUDER} ~4 broke|break|breaking|broken|kick*|forc*|bust* ~1 in|into|open|down",
            "a|been|another break|breakin ~0 in|ins -the|my|our|your|lease",
            f"break|breakin ~0 in|ins ~0 the|my|our ~0 {PLACE}",
            f"{INTRUDER} ~3 try* ~0 to ~0 get|break|open|force|kick|come ~2 in|into|door*|window*|lock*",
            f"{INTRUDER} ~2 in|inside ~1 my|our|the ~0 {PLACE} -complex|building|manager|office|parking",
            "door ~3 kicked|forced|broken|pried|jimmied ~0 in|open",
            "kicked|forced|pried ~2 door*|lock*",
        ),
        patterns=_p("intruder*|burglar*|prowler*|burglary|trespasser*|robbery|robbed|invasion"),
    ),
    HazardRule(
        "elevator",
        "Please stay calm and stay inside; don't try to force the doors or climb out. Help is coming. " + TRANSFER_LINE,
        strong=_p(
            "stuck|trapped|locked|jammed ~3 elevator*|lift",
            "elevator*|lift ~6 stuck|trapped|jammed",
            "elevator*|lift ~3 between ~0 floors",
        ),
    ),
    HazardRule(
        "medical",
        "If anyone is badly hurt or not breathing, please call 911 now. " + TRANSFER_LINE,
        strong=_p(
            "cant|cannot|not|isnt|stopped|wont|trouble|hard ~1 breath*",
            "unconscious|unresponsive|overdos*|seizure*|choking|collapsed",
            "passed ~0 out",
            "not|isnt|wont|cant ~1 moving|move|wake",
            "chest ~0 pain*",
            "ambulance|paramedic*",
        ),
        patterns=_p(
            f"{PERSON} ~3 hurt|injured|bleeding|wounded|unconscious",
            "injured|injury|bleeding|stroke",
            "heart attack",
            "fell|fallen|fall|slipped|tripped ~1 down|off|from|through ~2 stairs|stairway|steps|balcony|ladder|roof|"
            "window",
            "leg|arm|hip|ankle|wrist|neck|bone*|skull ~2 broken|broke",
            "broke|broken ~1 his|her|my|their ~0 leg|arm|hip|ankle|wrist|neck|back|bone*",
            "hit ~1 his|her|my|their ~0 head",
        ),
        unless=_p(
            "could|might|gonna|will|would|going|before|may ~3 hurt|injured|injury|slip*|fall",
            "hurt ~2 feelings",
            "gave|give ~1 me ~0 a ~0 heart ~0 attack",
        ),
    ),
)
# Things said after a hazard, in the same sentence, that say it is over or long past.
RESOLVED = _p(
    "gone now",
    "its|is|has ~0 gone",
    "went away",
    "stopped now",
    "been|got|is|its|all ~0 fixed",
    "fixed now",
    "false alarm",
    "its fine",
    "fine now",
    "all good now",
    "cleaned ~1 up",
    "years|months ~0 ago",
    "last year|month",
)


def _build_index(rule: HazardRule) -> None:
    """First-word lookup so each token only tries the patterns that can start on it."""
    index: dict[str, list[tuple[TokenPattern, bool]]] = {}
    for strong, patterns in ((True, rule.strong), (False, rule.patterns)):
        for pattern in patterns:
            first = pattern.first
            for word in first.words:
                index.setdefault(word, []).append((pattern, strong))
            for prefix in first.prefixes:
                index.setdefault(prefix + "*", []).append((pattern, strong))
    rule.index.update({k: tuple(v) for k, v in index.items()})


for _rule in HAZARDS:
    _build_index(_rule)


# --- normalisation -------------------------------------------------------------------------
def scanned_text(text: str) -> str:
    """The part of a turn the layer reads: all of it up to MAX_SCAN_CHARS, else both ends."""
    if len(text) <= MAX_SCAN_CHARS:
        return text
    return text[:HEAD_CHARS] + " . " + text[-TAIL_CHARS:]


def _tokens(text: str) -> list[str]:
    lowered = _ACRONYM.sub(r"\1\2", scanned_text(text).lower().translate(_APOSTROPHES))
    tokens: list[str] = []
    for match in _TOKEN.finditer(lowered):
        word = match.group(0)
        if word in ".!?":
            word = SENTENCE
        elif word in ",;:—–":
            word = CLAUSE
        elif word in FILLERS:
            continue
        if tokens and tokens[-1] == word:  # stutters and repeats: "i i smell", "no no no"
            continue
        if word in (SENTENCE, CLAUSE) and (not tokens or tokens[-1] in (SENTENCE, CLAUSE)):
            if tokens and word == SENTENCE:
                tokens[-1] = SENTENCE
            continue
        tokens.append(word)
    return tokens


def normalise_speech(text: str) -> str:
    """Lower-case words with fillers and repeats dropped; "." ends a sentence and "," a clause.

    `don't` → `dont`, "C.O." → "co", "um, uh, I I smell gas!" → "i smell gas ."
    """
    return " ".join(_tokens(text))


# --- negation scope ------------------------------------------------------------------------
def _negation_scopes(tokens: list[str]) -> list[tuple[int, ...]]:
    """For each token, the negators whose scope covers it (at most SCOPE_TOKENS to the right,
    inside the clause, stopping at a conjunction or a new subject)."""
    scopes: list[tuple[int, ...]] = [() for _ in tokens]
    for p, word in enumerate(tokens):
        if word not in NEGATORS:
            continue
        if word == "no" and p + 1 < len(tokens) and tokens[p + 1] in NOT_QUANTIFIED:
            continue  # "no the pipe burst", "no no": an interjection
        for q in range(p + 1, min(len(tokens), p + 1 + SCOPE_TOKENS)):
            token = tokens[q]
            if token in (SENTENCE, CLAUSE) or token in SCOPE_ENDS:
                break
            scopes[q] = (*scopes[q], p)
            if token in HEDGES:
                break
    return scopes


def _negated(tokens: list[str], positions: tuple[int, ...], scopes: list[tuple[int, ...]]) -> bool:
    own = set(positions)  # negators the pattern spells out ("can't breathe", "heat isn't working") don't count
    return any(n not in own for q in positions for n in scopes[q])


def _resolved(tokens: list[str], end: int, steps: list[int]) -> bool:
    for q in range(end + 1, min(len(tokens), end + 1 + RESOLUTION_WINDOW)):
        if tokens[q] == SENTENCE:
            return False
        if any(p.match_at(tokens, q, steps) is not None for p in RESOLVED):
            return True
    return False


# --- matching ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8192)  # bounded: hostile turns can't grow it
def _candidates(token: str) -> tuple[tuple[tuple[TokenPattern, bool], ...], ...]:
    """For each rule in HAZARDS order, the patterns that can start on `token`."""
    keys = [token, *(token[:cut] + "*" for cut in range(min(len(token), 12), 1, -1))]  # stems are short
    return tuple(tuple(c for key in keys for c in rule.index.get(key, ())) for rule in HAZARDS)


def _covered(matches: list[tuple[int, ...]], positions: tuple[int, ...]) -> bool:
    return any(set(m) & set(positions) for m in matches)


def _all_matches(patterns: tuple[TokenPattern, ...], tokens: list[str], steps: list[int]) -> list[tuple[int, ...]]:
    found: list[tuple[int, ...]] = []
    for i in range(len(tokens)):
        for pattern in patterns:
            got = pattern.match_at(tokens, i, steps)
            if got is not None:
                found.append(got)
    return found


def _rule_match(
    r: int,
    tokens: list[str],
    candidates: list[tuple[tuple[tuple[TokenPattern, bool], ...], ...]],
    scopes: list[tuple[int, ...]],
    steps: list[int],
) -> tuple[int, ...] | None:
    rule = HAZARDS[r]
    excluded: list[tuple[int, ...]] | None = None
    for i, options in enumerate(candidates):
        for pattern, strong in options[r]:
            got = pattern.match_at(tokens, i, steps)
            if got is None or _negated(tokens, got, scopes) or _resolved(tokens, got[-1], steps):
                continue
            if not strong:
                if excluded is None:
                    excluded = _all_matches(rule.unless, tokens, steps)
                if _covered(excluded, got):
                    continue
            if rule.requires and all(_negated(tokens, m, scopes) for m in _all_matches(rule.requires, tokens, steps)):
                return None
            return got
    return None


@dataclass(frozen=True, slots=True)
class Scan:
    """One turn read: the hazard (or None), how many tokens were read, how many matcher steps ran."""

    hazard: Hazard | None
    tokens: int
    steps: int


def scan_turn(text: str) -> Scan:
    """`detect_hazard` with the work it did, so tests and the bench can show it stays linear."""
    tokens = _tokens(text)
    steps = [0]
    scopes = _negation_scopes(tokens)
    candidates = [_candidates(token) for token in tokens]
    for r, rule in enumerate(HAZARDS):
        got = _rule_match(r, tokens, candidates, scopes, steps)
        if got is not None:
            matched = " ".join(tokens[got[0] : got[-1] + 1])
            return Scan(Hazard(rule.category, rule.instruction, matched), len(tokens), steps[0])
    return Scan(None, len(tokens), steps[0])


def detect_hazard(text: str) -> Hazard | None:
    """The first hazard the caller's words describe, or None."""
    return scan_turn(text).hazard
