"""Seed family `json`: "Return valid JSON with keys {...}" over facts and computed values.

From the seed "Return valid JSON with keys {city, country} for city=Paris.": a first
attempt often drops a key or wraps the object in prose, so the verifier checks the
object against a schema and the values against the expected answer.

Knowledge templates (city -> country, country -> capital, element -> symbol) use only
facts that are stable and undisputed, spelled the way English text usually spells them
without diacritics, so that a right answer is not rejected over a spelling: countries
with contested or multiple capitals (Bolivia, South Africa, Israel, the Netherlands, ...),
recently renamed ones and cities that share a name with another well-known city are left
out. Procedural templates (word length, squares, sums) have values computed here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from distillery.tasks.base import TaskPrompt
from distillery.tasks.seeds_common import Candidate, fill_splits

FAMILY = "json"
N_TRAIN = 300
N_TEST = 150
SEED = 20250814

CITY_COUNTRY: tuple[tuple[str, str], ...] = (
    ("Paris", "France"),
    ("Lyon", "France"),
    ("Marseille", "France"),
    ("Nice", "France"),
    ("Bordeaux", "France"),
    ("Toulouse", "France"),
    ("Berlin", "Germany"),
    ("Munich", "Germany"),
    ("Hamburg", "Germany"),
    ("Frankfurt", "Germany"),
    ("Cologne", "Germany"),
    ("Stuttgart", "Germany"),
    ("Rome", "Italy"),
    ("Milan", "Italy"),
    ("Naples", "Italy"),
    ("Florence", "Italy"),
    ("Venice", "Italy"),
    ("Turin", "Italy"),
    ("Madrid", "Spain"),
    ("Barcelona", "Spain"),
    ("Seville", "Spain"),
    ("Bilbao", "Spain"),
    ("Lisbon", "Portugal"),
    ("Porto", "Portugal"),
    ("Tokyo", "Japan"),
    ("Osaka", "Japan"),
    ("Kyoto", "Japan"),
    ("Yokohama", "Japan"),
    ("Sapporo", "Japan"),
    ("Hiroshima", "Japan"),
    ("Nagoya", "Japan"),
    ("Beijing", "China"),
    ("Shanghai", "China"),
    ("Shenzhen", "China"),
    ("Guangzhou", "China"),
    ("Chengdu", "China"),
    ("Wuhan", "China"),
    ("Mumbai", "India"),
    ("Delhi", "India"),
    ("Bangalore", "India"),
    ("Chennai", "India"),
    ("Kolkata", "India"),
    ("New York City", "United States"),
    ("Chicago", "United States"),
    ("Los Angeles", "United States"),
    ("San Francisco", "United States"),
    ("Seattle", "United States"),
    ("Boston", "United States"),
    ("Miami", "United States"),
    ("Houston", "United States"),
    ("Toronto", "Canada"),
    ("Montreal", "Canada"),
    ("Vancouver", "Canada"),
    ("Calgary", "Canada"),
    ("Ottawa", "Canada"),
    ("Rio de Janeiro", "Brazil"),
    ("Recife", "Brazil"),
    ("Manaus", "Brazil"),
    ("Buenos Aires", "Argentina"),
    ("Mendoza", "Argentina"),
    ("Rosario", "Argentina"),
    ("Mexico City", "Mexico"),
    ("Guadalajara", "Mexico"),
    ("Monterrey", "Mexico"),
    ("Tijuana", "Mexico"),
    ("Sydney", "Australia"),
    ("Melbourne", "Australia"),
    ("Brisbane", "Australia"),
    ("Adelaide", "Australia"),
    ("Canberra", "Australia"),
    ("Auckland", "New Zealand"),
    ("Wellington", "New Zealand"),
    ("Christchurch", "New Zealand"),
    ("Cairo", "Egypt"),
    ("Luxor", "Egypt"),
    ("Giza", "Egypt"),
    ("Nairobi", "Kenya"),
    ("Mombasa", "Kenya"),
    ("Lagos", "Nigeria"),
    ("Abuja", "Nigeria"),
    ("Johannesburg", "South Africa"),
    ("Cape Town", "South Africa"),
    ("Durban", "South Africa"),
    ("Casablanca", "Morocco"),
    ("Marrakesh", "Morocco"),
    ("Rabat", "Morocco"),
    ("Moscow", "Russia"),
    ("Novosibirsk", "Russia"),
    ("Vladivostok", "Russia"),
    ("Seoul", "South Korea"),
    ("Busan", "South Korea"),
    ("Incheon", "South Korea"),
    ("Bangkok", "Thailand"),
    ("Chiang Mai", "Thailand"),
    ("Phuket", "Thailand"),
    ("Hanoi", "Vietnam"),
    ("Ho Chi Minh City", "Vietnam"),
    ("Da Nang", "Vietnam"),
    ("Jakarta", "Indonesia"),
    ("Surabaya", "Indonesia"),
    ("Bandung", "Indonesia"),
    ("Manila", "Philippines"),
    ("Cebu City", "Philippines"),
    ("Athens", "Greece"),
    ("Thessaloniki", "Greece"),
    ("Vienna", "Austria"),
    ("Salzburg", "Austria"),
    ("Innsbruck", "Austria"),
    ("Zurich", "Switzerland"),
    ("Geneva", "Switzerland"),
    ("Basel", "Switzerland"),
    ("Stockholm", "Sweden"),
    ("Gothenburg", "Sweden"),
    ("Oslo", "Norway"),
    ("Bergen", "Norway"),
    ("Copenhagen", "Denmark"),
    ("Aarhus", "Denmark"),
    ("Helsinki", "Finland"),
    ("Warsaw", "Poland"),
    ("Krakow", "Poland"),
    ("Gdansk", "Poland"),
    ("Budapest", "Hungary"),
    ("Dublin", "Ireland"),
    ("Cork", "Ireland"),
    ("Brussels", "Belgium"),
    ("Antwerp", "Belgium"),
    ("Bruges", "Belgium"),
    ("Lima", "Peru"),
    ("Cusco", "Peru"),
    ("Medellin", "Colombia"),
    ("Karachi", "Pakistan"),
    ("Lahore", "Pakistan"),
    ("Dhaka", "Bangladesh"),
    ("Chittagong", "Bangladesh"),
    ("Riyadh", "Saudi Arabia"),
    ("Jeddah", "Saudi Arabia"),
    ("Mecca", "Saudi Arabia"),
    ("Dubai", "United Arab Emirates"),
    ("Abu Dhabi", "United Arab Emirates"),
    ("Tehran", "Iran"),
    ("Isfahan", "Iran"),
    ("Tel Aviv", "Israel"),
    ("Kuala Lumpur", "Malaysia"),
    ("Lviv", "Ukraine"),
    ("Havana", "Cuba"),
    ("Addis Ababa", "Ethiopia"),
    ("Accra", "Ghana"),
    ("Dar es Salaam", "Tanzania"),
    ("Reykjavik", "Iceland"),
)

COUNTRY_CAPITAL: tuple[tuple[str, str], ...] = (
    ("Afghanistan", "Kabul"),
    ("Albania", "Tirana"),
    ("Algeria", "Algiers"),
    ("Angola", "Luanda"),
    ("Argentina", "Buenos Aires"),
    ("Armenia", "Yerevan"),
    ("Australia", "Canberra"),
    ("Austria", "Vienna"),
    ("Azerbaijan", "Baku"),
    ("Bahamas", "Nassau"),
    ("Bahrain", "Manama"),
    ("Bangladesh", "Dhaka"),
    ("Barbados", "Bridgetown"),
    ("Belarus", "Minsk"),
    ("Belgium", "Brussels"),
    ("Belize", "Belmopan"),
    ("Bhutan", "Thimphu"),
    ("Bosnia and Herzegovina", "Sarajevo"),
    ("Botswana", "Gaborone"),
    ("Brunei", "Bandar Seri Begawan"),
    ("Bulgaria", "Sofia"),
    ("Burkina Faso", "Ouagadougou"),
    ("Cambodia", "Phnom Penh"),
    ("Canada", "Ottawa"),
    ("Central African Republic", "Bangui"),
    ("Chile", "Santiago"),
    ("China", "Beijing"),
    ("Croatia", "Zagreb"),
    ("Cuba", "Havana"),
    ("Cyprus", "Nicosia"),
    ("Denmark", "Copenhagen"),
    ("Dominican Republic", "Santo Domingo"),
    ("Ecuador", "Quito"),
    ("Egypt", "Cairo"),
    ("El Salvador", "San Salvador"),
    ("Eritrea", "Asmara"),
    ("Estonia", "Tallinn"),
    ("Ethiopia", "Addis Ababa"),
    ("Fiji", "Suva"),
    ("Finland", "Helsinki"),
    ("France", "Paris"),
    ("Gabon", "Libreville"),
    ("Gambia", "Banjul"),
    ("Germany", "Berlin"),
    ("Ghana", "Accra"),
    ("Greece", "Athens"),
    ("Guatemala", "Guatemala City"),
    ("Guinea", "Conakry"),
    ("Guyana", "Georgetown"),
    ("Haiti", "Port-au-Prince"),
    ("Honduras", "Tegucigalpa"),
    ("Hungary", "Budapest"),
    ("India", "New Delhi"),
    ("Iran", "Tehran"),
    ("Iraq", "Baghdad"),
    ("Ireland", "Dublin"),
    ("Italy", "Rome"),
    ("Jamaica", "Kingston"),
    ("Japan", "Tokyo"),
    ("Jordan", "Amman"),
    ("Kenya", "Nairobi"),
    ("Kuwait", "Kuwait City"),
    ("Kyrgyzstan", "Bishkek"),
    ("Laos", "Vientiane"),
    ("Latvia", "Riga"),
    ("Lebanon", "Beirut"),
    ("Lesotho", "Maseru"),
    ("Liberia", "Monrovia"),
    ("Libya", "Tripoli"),
    ("Liechtenstein", "Vaduz"),
    ("Lithuania", "Vilnius"),
    ("Madagascar", "Antananarivo"),
    ("Malawi", "Lilongwe"),
    ("Mali", "Bamako"),
    ("Malta", "Valletta"),
    ("Marshall Islands", "Majuro"),
    ("Mauritania", "Nouakchott"),
    ("Mauritius", "Port Louis"),
    ("Mexico", "Mexico City"),
    ("Morocco", "Rabat"),
    ("Mozambique", "Maputo"),
    ("Namibia", "Windhoek"),
    ("Nepal", "Kathmandu"),
    ("New Zealand", "Wellington"),
    ("Nicaragua", "Managua"),
    ("Niger", "Niamey"),
    ("Nigeria", "Abuja"),
    ("North Korea", "Pyongyang"),
    ("North Macedonia", "Skopje"),
    ("Norway", "Oslo"),
    ("Oman", "Muscat"),
    ("Pakistan", "Islamabad"),
    ("Panama", "Panama City"),
    ("Papua New Guinea", "Port Moresby"),
    ("Peru", "Lima"),
    ("Philippines", "Manila"),
    ("Poland", "Warsaw"),
    ("Portugal", "Lisbon"),
    ("Qatar", "Doha"),
    ("Romania", "Bucharest"),
    ("Russia", "Moscow"),
    ("Rwanda", "Kigali"),
    ("Samoa", "Apia"),
    ("Saudi Arabia", "Riyadh"),
    ("Senegal", "Dakar"),
    ("Serbia", "Belgrade"),
    ("Seychelles", "Victoria"),
    ("Sierra Leone", "Freetown"),
    ("Slovakia", "Bratislava"),
    ("Slovenia", "Ljubljana"),
    ("Solomon Islands", "Honiara"),
    ("Somalia", "Mogadishu"),
    ("South Korea", "Seoul"),
    ("South Sudan", "Juba"),
    ("Spain", "Madrid"),
    ("Suriname", "Paramaribo"),
    ("Sweden", "Stockholm"),
    ("Syria", "Damascus"),
    ("Tajikistan", "Dushanbe"),
    ("Thailand", "Bangkok"),
    ("Trinidad and Tobago", "Port of Spain"),
    ("Tunisia", "Tunis"),
    ("Turkey", "Ankara"),
    ("Uganda", "Kampala"),
    ("United Arab Emirates", "Abu Dhabi"),
    ("United Kingdom", "London"),
    ("Uruguay", "Montevideo"),
    ("Uzbekistan", "Tashkent"),
    ("Vanuatu", "Port Vila"),
    ("Venezuela", "Caracas"),
    ("Vietnam", "Hanoi"),
    ("Zambia", "Lusaka"),
    ("Zimbabwe", "Harare"),
)

# The first 50 elements: (name, symbol, atomic number), names as IUPAC spells them
# ("Aluminium", "Sulfur"); the name is given in the prompt and only echoed back.
ELEMENTS: tuple[tuple[str, str, int], ...] = (
    ("Hydrogen", "H", 1),
    ("Helium", "He", 2),
    ("Lithium", "Li", 3),
    ("Beryllium", "Be", 4),
    ("Boron", "B", 5),
    ("Carbon", "C", 6),
    ("Nitrogen", "N", 7),
    ("Oxygen", "O", 8),
    ("Fluorine", "F", 9),
    ("Neon", "Ne", 10),
    ("Sodium", "Na", 11),
    ("Magnesium", "Mg", 12),
    ("Aluminium", "Al", 13),
    ("Silicon", "Si", 14),
    ("Phosphorus", "P", 15),
    ("Sulfur", "S", 16),
    ("Chlorine", "Cl", 17),
    ("Argon", "Ar", 18),
    ("Potassium", "K", 19),
    ("Calcium", "Ca", 20),
    ("Scandium", "Sc", 21),
    ("Titanium", "Ti", 22),
    ("Vanadium", "V", 23),
    ("Chromium", "Cr", 24),
    ("Manganese", "Mn", 25),
    ("Iron", "Fe", 26),
    ("Cobalt", "Co", 27),
    ("Nickel", "Ni", 28),
    ("Copper", "Cu", 29),
    ("Zinc", "Zn", 30),
    ("Gallium", "Ga", 31),
    ("Germanium", "Ge", 32),
    ("Arsenic", "As", 33),
    ("Selenium", "Se", 34),
    ("Bromine", "Br", 35),
    ("Krypton", "Kr", 36),
    ("Rubidium", "Rb", 37),
    ("Strontium", "Sr", 38),
    ("Yttrium", "Y", 39),
    ("Zirconium", "Zr", 40),
    ("Niobium", "Nb", 41),
    ("Molybdenum", "Mo", 42),
    ("Technetium", "Tc", 43),
    ("Ruthenium", "Ru", 44),
    ("Rhodium", "Rh", 45),
    ("Palladium", "Pd", 46),
    ("Silver", "Ag", 47),
    ("Cadmium", "Cd", 48),
    ("Indium", "In", 49),
    ("Tin", "Sn", 50),
)

# Plain lowercase words, no repeated entries; their length and reversal are computed.
WORDS: tuple[str, ...] = (
    "apple", "garden", "planet", "river", "window", "bridge", "candle", "forest",
    "guitar", "harbor", "island", "jacket", "kettle", "ladder", "mirror", "needle",
    "orange", "pencil", "rabbit", "saddle", "tunnel", "violin", "wallet", "yellow",
    "anchor", "basket", "castle", "dragon", "engine", "falcon", "ginger", "hammer",
    "insect", "jungle", "kitten", "lemon", "market", "napkin", "oyster", "pepper",
    "rocket", "silver", "tomato", "umbrella", "valley", "winter", "zebra", "breeze",
    "cloud", "desert", "eagle", "feather", "glacier", "horizon", "jigsaw", "lantern",
    "meadow", "nectar", "orchid", "puzzle", "quartz", "ribbon", "shadow", "thunder",
    "voyage", "whistle", "almond", "butter", "cactus", "dolphin", "ember", "fabric",
    "galaxy", "hollow", "ivory", "journal", "kingdom", "lobster", "magnet", "nutmeg",
    "olive", "parrot", "quiver", "raisin", "spider", "turtle", "velvet", "walnut",
    "anthem", "blanket", "cobalt", "domino", "elbow", "flannel", "goblet", "hermit",
    "igloo", "jasmine", "kernel", "locket", "marble", "noodle", "pebble", "radish",
    "sketch", "timber", "vendor", "wizard", "acorn", "bottle", "carpet", "dinner",
    "puppet", "silence", "morning", "picture", "station", "teacher", "weather", "coffee",
    "camera", "button", "circle", "finger", "flower", "letter", "monkey", "pillow",
    "summer", "ticket", "travel", "wonder", "basil", "cherry", "copper", "diamond",
    "frost", "grape", "honey", "melon", "north", "ocean", "piano", "robin",
)  # fmt: skip


def _type_name(value: Any) -> str:
    # bool before int: in Python True is an int, in JSON Schema it is not.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "string"


def _candidate(template: str, expected: dict[str, Any], subject: str, split_key: str) -> Candidate:
    keys = list(expected)
    user = f"Return valid JSON with keys {{{', '.join(keys)}}} for {subject}."
    schema = {
        "type": "object",
        "required": keys,
        "properties": {k: {"type": _type_name(v)} for k, v in expected.items()},
    }
    spec = {"kind": "json_schema", "schema": schema, "expected": expected}
    # The key order of the answer follows the prompt, which reads most naturally.
    return Candidate(f"{template}:{subject}", user, spec, json.dumps(expected), split_key)


def _cities(rng: random.Random) -> Iterator[Candidate]:
    for city, country in rng.sample(CITY_COUNTRY, len(CITY_COUNTRY)):
        yield _candidate("city", {"city": city, "country": country}, f"city={city}", f"city:{city}")


def _capitals(rng: random.Random) -> Iterator[Candidate]:
    for country, capital in rng.sample(COUNTRY_CAPITAL, len(COUNTRY_CAPITAL)):
        expected = {"country": country, "capital": capital}
        # Split by the capital city, the same key the city template uses, so "Paris ->
        # France" and "France -> Paris" (one fact, asked both ways) share a split.
        yield _candidate("capital", expected, f"country={country}", f"city:{capital}")


def _elements(rng: random.Random) -> Iterator[Candidate]:
    for name, symbol, number in rng.sample(ELEMENTS, len(ELEMENTS)):
        expected = {"element": name, "symbol": symbol, "atomic_number": number}
        yield _candidate("element", expected, f"element={name}", f"element:{name}")


def _words(rng: random.Random) -> Iterator[Candidate]:
    for word in rng.sample(WORDS, len(WORDS)):
        expected = {"word": word, "length": len(word), "reversed": word[::-1]}
        subject = f'word="{word}" (reversed = the word spelled backwards)'
        yield _candidate("word", expected, subject, f"word:{word}")


def _numbers(rng: random.Random) -> Iterator[Candidate]:
    for n in rng.sample(range(2, 200), 198):
        expected = {"n": n, "square": n * n, "is_even": n % 2 == 0}
        yield _candidate("square", expected, f"n={n} (is_even is true or false)", f"n:{n}")


def _pairs(rng: random.Random) -> Iterator[Candidate]:
    pairs = [(a, b) for a in range(2, 31) for b in range(a + 1, 31)]
    for a, b in rng.sample(pairs, len(pairs)):
        if rng.random() < 0.5:  # either order in the text; the split key ignores it
            a, b = b, a
        expected = {"a": a, "b": b, "sum": a + b, "product": a * b}
        yield _candidate("pair", expected, f"a={a}, b={b}", f"pair:{min(a, b)}:{max(a, b)}")


_TEMPLATES: tuple[Callable[[random.Random], Iterator[Candidate]], ...] = (
    _cities,
    _capitals,
    _elements,
    _words,
    _numbers,
    _pairs,
)


def _candidates() -> Iterator[Candidate]:
    rng = random.Random(SEED)
    # The seed document's own example goes first so it is always in the suite.
    yield _candidate("city", {"city": "Paris", "country": "France"}, "city=Paris", "city:Paris")
    # Round-robin over the templates, so every template is represented in both splits
    # whatever the caps are; a template that runs out simply drops from the rotation.
    streams = [template(rng) for template in _TEMPLATES]
    while streams:
        for stream in list(streams):
            cand = next(stream, None)
            if cand is None:
                streams.remove(stream)
            else:
                yield cand


def prompts(suite: str) -> list[TaskPrompt]:
    """Exactly N_TRAIN train and N_TEST test prompts, in a fixed order."""
    return fill_splits(suite, FAMILY, _candidates(), N_TRAIN, N_TEST)
