"""Seed family `number`: short arithmetic questions answered with a bare integer.

From the seed "What's the factorial of 5? (Respond with a number only)": the base model
often knows the answer but wraps it in words or gets it right only some of the time, so
the verifier accepts a completion that is the number and nothing else.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

from distillery.tasks.base import TaskPrompt
from distillery.tasks.seeds_common import Candidate, fill_splits

FAMILY = "number"
N_TRAIN = 300
N_TEST = 150
SEED = 20250813

# Several wordings, so training teaches the format rather than one exact sentence.
INSTRUCTIONS: tuple[str, ...] = (
    "Respond with a number only.",
    "Answer with a number only.",
    "Reply with just the number.",
)

# (key, question, answer): the key names the problem itself, so two wordings of one
# problem (or 3 + 4 and 4 + 3) count as one and can never straddle the splits.
Problem = tuple[str, str, int]


def _add(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    q = rng.choice(("What is {a} + {b}?", "What is {a} plus {b}?", "Add {a} and {b}."))
    return f"add:{min(a, b)}:{max(a, b)}", q.format(a=a, b=b), a + b


def _sub(rng: random.Random) -> Problem:
    # Kept non-negative: a minus sign is one more token for a small model to drop.
    a = rng.randint(20, 999)
    b = rng.randint(1, a - 1)
    q = rng.choice(("What is {a} - {b}?", "What is {a} minus {b}?", "Subtract {b} from {a}."))
    return f"sub:{a}:{b}", q.format(a=a, b=b), a - b


def _mul(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 99), rng.randint(2, 19)
    q = rng.choice(("What is {a} * {b}?", "What is {a} times {b}?", "Multiply {a} by {b}."))
    return f"mul:{min(a, b)}:{max(a, b)}", q.format(a=a, b=b), a * b


def _div(rng: random.Random) -> Problem:
    # Built from the quotient so the division is always exact.
    b, quotient = rng.randint(2, 19), rng.randint(2, 60)
    a = b * quotient
    q = rng.choice(("What is {a} divided by {b}?", "What is {a} / {b}?"))
    return f"div:{a}:{b}", q.format(a=a, b=b), quotient


def _factorial(rng: random.Random) -> Problem:
    # 12! is the largest factorial that fits in 32 bits; beyond that it is recall, not skill.
    n = rng.randint(0, 12)
    q = rng.choice(("What is the factorial of {n}?", "What's the factorial of {n}?"))
    return f"fact:{n}", q.format(n=n), math.factorial(n)


def _power(rng: random.Random) -> Problem:
    base = rng.randint(2, 12)
    # The largest exponent that keeps the result at or below 100,000.
    top = max(2, int(math.log(100_000, base)))
    exp = rng.randint(2, top)
    if exp == 2 and rng.random() < 0.5:
        q = f"What is {base} squared?"
    elif exp == 3 and rng.random() < 0.5:
        q = f"What is {base} cubed?"
    else:
        q = rng.choice((f"What is {base} to the power of {exp}?", f"What is {base}^{exp}?"))
    return f"pow:{base}:{exp}", q, base**exp


def _gcd(rng: random.Random) -> Problem:
    # A shared factor makes most answers bigger than 1, which is the interesting case.
    g = rng.randint(2, 15)
    a, b = g * rng.randint(1, 15), g * rng.randint(1, 15)
    if a == b:
        b += g
    q = f"What is the greatest common divisor of {a} and {b}?"
    return f"gcd:{min(a, b)}:{max(a, b)}", q, math.gcd(a, b)


def _lcm(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    q = f"What is the least common multiple of {a} and {b}?"
    return f"lcm:{min(a, b)}:{max(a, b)}", q, math.lcm(a, b)


def _sum_list(rng: random.Random) -> Problem:
    nums = [rng.randint(1, 99) for _ in range(rng.randint(3, 5))]
    listed = ", ".join(str(n) for n in nums[:-1]) + f" and {nums[-1]}"
    key = "sum:" + ",".join(str(n) for n in sorted(nums))
    return key, f"What is the sum of {listed}?", sum(nums)


def _percent(rng: random.Random) -> Problem:
    pct = rng.choice((5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80))
    # The smallest whole that makes pct% of it an integer, times a random factor.
    step = 100 // math.gcd(pct, 100)
    whole = step * rng.randint(1, max(1, 800 // step))
    q = rng.choice(("What is {p}% of {w}?", "What is {p} percent of {w}?"))
    return f"pct:{pct}:{whole}", q.format(p=pct, w=whole), pct * whole // 100


def _remainder(rng: random.Random) -> Problem:
    a, b = rng.randint(10, 500), rng.randint(3, 20)
    q = f"What is the remainder when {a} is divided by {b}?"
    return f"mod:{a}:{b}", q, a % b


def _sqrt(rng: random.Random) -> Problem:
    root = rng.randint(2, 40)
    return f"sqrt:{root * root}", f"What is the square root of {root * root}?", root


# Weights favour the open-ended kinds; the small finite ones (factorial, powers, square
# roots) saturate after a few dozen draws and would otherwise stall the stream.
_KINDS: tuple[tuple[Callable[[random.Random], Problem], int], ...] = (
    (_add, 4),
    (_sub, 4),
    (_mul, 4),
    (_div, 3),
    (_factorial, 1),
    (_power, 2),
    (_gcd, 2),
    (_lcm, 1),
    (_sum_list, 3),
    (_percent, 3),
    (_remainder, 2),
    (_sqrt, 1),
)


def _spec(answer: int) -> dict[str, Any]:
    return {"kind": "answer", "expected": str(answer), "match": "numeric", "strict": True}


def _candidates() -> Iterator[Candidate]:
    rng = random.Random(SEED)
    # The seed document's own example goes first so it is always in the suite.
    yield Candidate(
        "fact:5", "What is the factorial of 5? Respond with a number only.", _spec(120), "120"
    )
    funcs = [f for f, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    while True:
        make = rng.choices(funcs, weights)[0]
        key, question, answer = make(rng)
        user = f"{question} {rng.choice(INSTRUCTIONS)}"
        yield Candidate(key, user, _spec(answer), str(answer))


def prompts(suite: str) -> list[TaskPrompt]:
    """Exactly N_TRAIN train and N_TEST test prompts, in a fixed order."""
    return fill_splits(suite, FAMILY, _candidates(), N_TRAIN, N_TEST)
