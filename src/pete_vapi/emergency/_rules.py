"""The hazard rules: what each category listens for, its look-alikes, and what Jamie says."""

from __future__ import annotations

from ._patterns import HazardRule, TokenPattern, _p
from ._speech import TRANSFER_LINE

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
NOT_INSIDE = "complex|building|manager|office|parking|above|below|next|across|upstairs|downstairs"
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
            # "the person in the unit above" is a neighbour, not an intruder.
            f"{INTRUDER} ~2 in|inside ~1 my|our|the ~0 {PLACE} -{NOT_INSIDE}",
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
