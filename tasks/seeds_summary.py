"""Seed family `summary`: summarise a short news-style paragraph in exactly two sentences.

From the seed "Summarization with style constraint (Two sentences, no emoji)": the
verifier checks form, not content (sentence count, no emoji, a word budget), so the
source paragraphs only need to read naturally and carry enough facts to summarise.

Paragraphs are built from templates and word lists (a town festival, company results, a
football match, a research study, a new public building), 4 to 7 sentences each. They are
plain ASCII with no abbreviations, decimals or other inner full stops, so every sentence
splitter counts the source's sentences the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from distillery.tasks.base import TaskPrompt
from distillery.tasks.seeds_common import Candidate, fill_splits

FAMILY = "summary"
N_TRAIN = 300
N_TEST = 150
SEED = 20250815

INSTRUCTION = "Summarise in exactly two sentences with no emoji."
MIN_SENTENCES = 4
MAX_SENTENCES = 7
MAX_SUMMARY_WORDS = 60

SPEC: dict[str, Any] = {
    "kind": "style",
    "sentences": 2,
    "no_emoji": True,
    "max_words": MAX_SUMMARY_WORDS,
}

TOWNS = (
    "Millbrook", "Ashford", "Kingsbridge", "Oakridge", "Fairhaven", "Elmstead", "Brookvale",
    "Stonehill", "Larkspur", "Westmere", "Redcliff", "Pinecrest", "Hollowell", "Thornbury",
    "Cedarton", "Bramley", "Northgate", "Willowby", "Eastwick", "Maplewood",
)  # fmt: skip
FIRST_NAMES = (
    "Maria", "James", "Aisha", "Tom", "Elena", "David", "Priya", "Samuel", "Hannah", "Kenji",
    "Laura", "Omar", "Grace", "Lucas", "Fatima", "Daniel", "Sofia", "Peter", "Nadia", "Chen",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Hart", "Novak", "Lindqvist", "Moreno", "Patel", "Brennan", "Tanaka", "Kowalski",
    "Adeyemi", "Fischer", "Walsh", "Costa", "Nguyen", "Haddad", "Larsen", "Rossi", "Mensah",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Scenario = tuple[list[str], list[str], str]  # (required head, optional middle, required tail)
Built = tuple[list[str], str]  # (source sentences, two-sentence summary)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _ordinal(n: int) -> str:
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _assemble(rng: random.Random, head: list[str], middle: list[str], tail: str) -> list[str]:
    """Head, then a random subset of the optional middle in its written order, then tail."""
    room = MAX_SENTENCES - len(head) - 1
    need = max(0, MIN_SENTENCES - len(head) - 1)
    k = rng.randint(need, min(room, len(middle)))
    picked = sorted(rng.sample(range(len(middle)), k))
    return [*head, *(middle[i] for i in picked), tail]


def _festival(rng: random.Random) -> Built:
    town, day = rng.choice(TOWNS), rng.choice(DAYS)
    event = rng.choice(
        ("harvest festival", "food market", "music festival", "book fair", "flower show")
    )
    nth = _ordinal(rng.randint(3, 40))
    visitors = rng.randrange(1_500, 20_000, 100)
    previous = visitors + rng.choice((-1, 1)) * rng.randrange(200, 1_400, 100)
    trend = "up from" if visitors > previous else "down from"
    plan = rng.choice(
        (
            "run over two days",
            "move to a larger site",
            "return in the same format",
            "add an evening programme",
        )
    )
    cause = rng.choice(("the local school", "a children's hospital", "the town library"))
    head = [
        f"The town of {town} held its {nth} annual {event} on {day}.",
        f"Organisers said about {visitors:,} people attended, {trend} {previous:,} last year.",
    ]
    middle = [
        f"About {rng.randint(20, 120)} local traders ran stalls along the main street.",
        rng.choice(
            (
                "The most popular attraction was a cooking contest, which drew long queues.",
                "Children crowded around a puppet show that ran every hour.",
                "A brass band from a neighbouring village played through the afternoon.",
            )
        ),
        rng.choice(
            (
                "Heavy rain in the late afternoon forced the closing concert indoors.",
                "Warm sunshine kept crowds in the park until the evening.",
                "Strong winds forced organisers to take down two tents early.",
            )
        ),
        f"Volunteers collected {rng.randint(30, 200)} bags of litter after the event.",
        f"Ticket sales raised about {rng.randrange(5_000, 60_000, 500):,} dollars for {cause}.",
    ]
    tail = f"{_person(rng)}, who chairs the town council, said the {event} will {plan} next year."
    summary = (
        f"{town} held its {nth} annual {event}, which drew about {visitors:,} people. "
        f"The council says the {event} will {plan} next year."
    )
    return _assemble(rng, head, middle, tail), summary


# (name, industry, best-known product): the name fits the industry, so no "Harbor Robotics,
# a food company".
COMPANIES = (
    ("Northwind Systems", "software", "cloud storage service"),
    ("Silverleaf Software", "software", "accounting app"),
    ("Bluefield Foods", "food", "range of ready meals"),
    ("Meadowgold Dairy", "food", "oat milk"),
    ("Copperline Energy", "energy", "home battery"),
    ("Brightwater Solar", "energy", "rooftop solar panel"),
    ("Harbor Robotics", "robotics", "warehouse robot"),
    ("Summit Textiles", "clothing", "outdoor jacket line"),
    ("Greenway Logistics", "transport", "electric delivery van"),
    ("Redstone Motors", "car", "small electric car"),
    ("Kestrel Games", "games", "mobile puzzle game"),
    ("Oakline Furniture", "furniture", "flat-pack desk"),
    ("Clearpath Telecom", "telecoms", "home broadband service"),
)


def _company(rng: random.Random) -> Built:
    name, industry, product = rng.choice(COMPANIES)
    city = rng.choice(("Leeds", "Denver", "Lyon", "Osaka", "Toronto", "Melbourne", "Dublin"))
    revenue, pct = rng.randint(12, 900), rng.randint(2, 35)
    up = rng.random() < 0.65
    change = "an increase" if up else "a decrease"
    plan = rng.choice(
        (
            f"hire {rng.randrange(50, 500, 10)} more staff",
            f"open a new office in {rng.choice(('Madrid', 'Seoul', 'Boston', 'Nairobi'))}",
            f"cut prices on its {product}",
            "expand into two new markets",
            "reduce its costs",
        )
    )
    ceo = _person(rng)
    head = [
        f"{name}, a {industry} company based in {city}, reported quarterly revenue of "
        f"{revenue} million dollars.",
        f"That is {change} of {pct} percent compared with the same quarter last year.",
    ]
    middle = [
        f"The company said most of the change came from sales of its {product}.",
        f"It now employs about {rng.randrange(200, 9_000, 50):,} people in "
        f"{rng.randint(2, 14)} offices.",
        f"Shares in the company {'rose' if up else 'fell'} {rng.randint(2, 15)} percent in "
        f"early trading.",
        f"Analysts had expected revenue of around {revenue + rng.randint(-20, 20)} million "
        f"dollars.",
        f"The firm also warned that higher {rng.choice(('energy', 'shipping', 'material'))} "
        f"costs could weigh on the next quarter.",
    ]
    tail = f"Chief executive {ceo} said the company plans to {plan} over the coming year."
    summary = (
        f"{name} reported quarterly revenue of {revenue} million dollars, {change} of {pct} "
        f"percent on a year earlier. Its chief executive said it plans to {plan}."
    )
    return _assemble(rng, head, middle, tail), summary


TEAMS = (
    "Harbor City Falcons", "Riverside Owls", "Northfield Rovers", "Eastport Mariners",
    "Greenhill Badgers", "Westbrook Wanderers", "Southvale Stags", "Lakeside Lions",
    "Ironbridge Foxes", "Kingsport Rangers", "Millfield Hawks", "Redbank Otters",
)  # fmt: skip


def _match(rng: random.Random) -> Built:
    home, away, next_team = rng.sample(TEAMS, 3)
    day, next_day = rng.sample(DAYS, 2)
    winner_goals = rng.randint(1, 5)
    loser_goals = rng.randint(0, winner_goals - 1)
    crowd = rng.randrange(2_000, 45_000, 100)
    position, gap = _ordinal(rng.randint(2, 9)), rng.randint(2, 12)
    head = [
        f"The {home} beat the {away} {winner_goals} to {loser_goals} on {day} "
        f"in front of {crowd:,} fans.",
    ]
    middle = [
        f"{_person(rng)} scored the opening goal after {rng.randint(3, 40)} minutes.",
        "The visitors had a goal ruled out for offside just before half time.",
        f"{_person(rng)}, the home goalkeeper, made several important saves late on.",
        f"It was the team's {_ordinal(rng.randint(2, 7))} win in a row.",
        f"{_person(rng)} left the field with an ankle injury and will miss the next match.",
        f"The result moves the {home} up to {position} place, {gap} points behind the leaders.",
    ]
    tail = f"Their next game is away to the {next_team} on {next_day}."
    summary = (
        f"The {home} beat the {away} {winner_goals} to {loser_goals} in front of {crowd:,} "
        f"fans. Their next game is away to the {next_team}."
    )
    return _assemble(rng, head, middle, tail), summary


# (topic, what was done, what was found, what was counted, what comes next)
STUDIES = (
    (
        "honeybee behaviour",
        "tracked hives in three farming regions",
        "bees foraged less on days with heavy traffic noise",
        "hives",
        "test whether quieter roads help colonies recover",
    ),
    (
        "sleep and memory",
        "followed the sleep of volunteers at home",
        "people who slept at least seven hours remembered more word pairs",
        "adult volunteers",
        "repeat the study with older adults",
    ),
    (
        "coral reefs",
        "surveyed reefs along the coast after each storm season",
        "reefs near river mouths recovered more slowly after storms",
        "reef sites",
        "measure how much soil the rivers carry to the sea",
    ),
    (
        "trees in cities",
        "measured street temperatures across the city every summer",
        "streets lined with mature trees were up to four degrees cooler",
        "streets",
        "work with planners on where to plant new trees",
    ),
    (
        "soil bacteria",
        "sampled fields that had been farmed in different ways",
        "fields without deep ploughing held more kinds of bacteria",
        "fields",
        "check whether the richer soils also give better harvests",
    ),
    (
        "bird migration",
        "fitted small trackers to birds before they flew south",
        "the birds left about a week earlier than they did twenty years ago",
        "birds",
        "follow the same birds on their return journey",
    ),
)


def _study(rng: random.Random) -> Built:
    lead = _person(rng)
    last_name = lead.split()[1]
    institute = f"University of {rng.choice(TOWNS)}"
    topic, method, finding, subjects, next_step = rng.choice(STUDIES)
    years = rng.randint(2, 12)
    head = [
        f"Researchers led by {lead} at the {institute} have published a study on {topic}.",
        f"Over {years} years, the team {method}.",
        f"They found that {finding}.",
    ]
    middle = [
        f"The study covered {rng.randint(40, 900)} {subjects} in total.",
        f"The work was paid for by a grant of {rng.randrange(50_000, 900_000, 10_000):,} "
        f"dollars from a national science fund.",
        f"The results surprised many on the team, {last_name} said.",
        "Other scientists said the findings still need to be confirmed by larger studies.",
    ]
    tail = f"The team now plans to {next_step}."
    summary = (
        f"A study led by {lead} at the {institute} found that {finding}. "
        f"The team now plans to {next_step}."
    )
    return _assemble(rng, head, middle, tail), summary


# (facility, a feature it has, what the mayor says it will do)
FACILITIES = (
    (
        "public library",
        "room for 80,000 books and a children's reading room",
        "give families a free place to study and meet",
    ),
    (
        "swimming pool",
        "a main pool and a separate pool for learners",
        "help more children learn to swim",
    ),
    (
        "footbridge",
        "a cycle lane and lighting along its whole length",
        "cut journey times across the river",
    ),
    (
        "health centre",
        "eight treatment rooms and a small pharmacy",
        "shorten waiting times for local patients",
    ),
    (
        "sports hall",
        "four indoor courts and a climbing wall",
        "give local clubs space to grow",
    ),
    (
        "bus station",
        "covered waiting areas and live departure boards",
        "make public transport easier to use",
    ),
)


def _opening(rng: random.Random) -> Built:
    facility, feature, benefit = rng.choice(FACILITIES)
    town = rng.choice(TOWNS)
    cost = rng.randint(3, 60)
    budget = rng.choice(("slightly over", "within", "well over"))
    head = [
        f"A new {facility} opened in {town} on {rng.choice(DAYS)} after {rng.randint(2, 9)} "
        f"years of planning.",
        f"The project cost {cost} million dollars, {budget} its original budget.",
    ]
    middle = [
        f"It has {feature}.",
        f"Around {rng.randrange(300, 5_000, 50):,} residents came to the opening ceremony.",
        f"Building work was held up for several months by "
        f"{rng.choice(('a shortage of steel', 'a wet winter', 'a dispute over the design'))}.",
        f"Local shop owners hope the {facility} will bring more visitors to the area.",
    ]
    tail = f"{_person(rng)}, the mayor, said the {facility} would {benefit}."
    summary = (
        f"A new {facility} has opened in {town} at a cost of {cost} million dollars. "
        f"The mayor said it would {benefit}."
    )
    return _assemble(rng, head, middle, tail), summary


_SCENARIOS: tuple[Callable[[random.Random], Built], ...] = (
    _festival,
    _company,
    _match,
    _study,
    _opening,
)


def _candidates() -> Iterator[Candidate]:
    rng = random.Random(SEED)
    while True:
        sentences, summary = rng.choice(_SCENARIOS)(rng)
        source = " ".join(sentences)
        # The source itself is the key: distinct paragraphs are distinct prompts.
        yield Candidate(source, f"{INSTRUCTION}\n\n{source}", SPEC, summary)


def prompts(suite: str) -> list[TaskPrompt]:
    """Exactly N_TRAIN train and N_TEST test prompts, in a fixed order."""
    return fill_splits(suite, FAMILY, _candidates(), N_TRAIN, N_TEST)
