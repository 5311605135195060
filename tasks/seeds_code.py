"""Seed family `code`: write one small Python function that must pass hidden unit tests.

From the seeds' codegen examples (`is_palindrome`, `int_to_roman`, `factorial`,
`slugify`): best-of-N with unit tests finds a passing solution far more often than one
sample does, which is exactly the gap training on verified samples should close.

Each task is a signature, a one-line behaviour and hand-written test cases whose
arguments and expected values are plain JSON. `REFERENCE_SOLUTIONS` holds a solution per
task; the tests run every reference against its own cases, so a wrong expected value is
caught here rather than charged to the model. The split is by function name, so a
function seen in training is never used to measure generalisation.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from distillery.tasks.base import TaskPrompt, split_for

FAMILY = "code"


@dataclass(frozen=True)
class CodeTask:
    name: str  # the entry point the tests call
    signature: str
    behaviour: str
    cases: tuple[dict[str, Any], ...]

    @property
    def user_text(self) -> str:
        return f"Write a Python function `{self.signature}`. {self.behaviour} Output code only."

    @property
    def spec(self) -> dict[str, Any]:
        return {"kind": "code_tests", "entry_point": self.name, "cases": list(self.cases)}


def _ok(*args: Any, want: Any) -> dict[str, Any]:
    """A case that must return `want`."""
    return {"args": list(args), "expected": want}


def _raises(*args: Any, error: str = "ValueError") -> dict[str, Any]:
    """A case that must raise `error` (by class name)."""
    return {"args": list(args), "raises": error}


_FIZZ_15 = ["1", "2", "Fizz", "4", "Buzz", "Fizz", "7", "8", "Fizz", "Buzz", "11", "Fizz"]
_FIZZ_15 += ["13", "14", "FizzBuzz"]

TASKS: tuple[CodeTask, ...] = (
    CodeTask(
        "is_palindrome",
        "is_palindrome(s: str) -> bool",
        "Return True if s reads the same forwards and backwards when case and "
        "non-alphanumeric characters are ignored.",
        (
            _ok("A man, a plan, a canal: Panama", want=True),
            _ok("racecar", want=True),
            _ok("hello", want=False),
            _ok("", want=True),
            _ok("No 'x' in Nixon", want=True),
            _ok("Was it a car or a cat I saw?", want=True),
            _ok("race a car", want=False),
            _ok("12321", want=True),
            _ok("ab", want=False),
        ),
    ),
    CodeTask(
        "int_to_roman",
        "int_to_roman(n: int) -> str",
        "Convert an integer 1 <= n <= 3999 to a Roman numeral, using subtractive "
        "notation (IV, IX, XL, XC, CD, CM).",
        (
            _ok(1, want="I"),
            _ok(4, want="IV"),
            _ok(9, want="IX"),
            _ok(14, want="XIV"),
            _ok(40, want="XL"),
            _ok(58, want="LVIII"),
            _ok(90, want="XC"),
            _ok(400, want="CD"),
            _ok(900, want="CM"),
            _ok(1994, want="MCMXCIV"),
            _ok(2024, want="MMXXIV"),
            _ok(3999, want="MMMCMXCIX"),
        ),
    ),
    CodeTask(
        "factorial",
        "factorial(n: int) -> int",
        "Return n! computed iteratively. Raise ValueError if n < 0.",
        (
            _ok(0, want=1),
            _ok(1, want=1),
            _ok(5, want=120),
            _ok(10, want=3628800),
            _ok(12, want=479001600),
            _ok(20, want=2432902008176640000),
            _raises(-1),
            _raises(-5),
        ),
    ),
    CodeTask(
        "slugify",
        "slugify(s: str) -> str",
        "Lowercase s, replace every run of characters other than a-z and 0-9 with a single "
        "hyphen, and strip hyphens from both ends.",
        (
            _ok("Hello World", want="hello-world"),
            _ok("  Already--slugged  ", want="already-slugged"),
            _ok("C'est la vie!", want="c-est-la-vie"),
            _ok("Python 3.12 Release Notes", want="python-3-12-release-notes"),
            _ok("", want=""),
            _ok("---", want=""),
            _ok("Multiple   spaces", want="multiple-spaces"),
            _ok("under_score", want="under-score"),
        ),
    ),
    CodeTask(
        "fizzbuzz",
        "fizzbuzz(n: int) -> list[str]",
        "Return a list for the numbers 1 to n: 'FizzBuzz' for multiples of 15, 'Fizz' for "
        "multiples of 3, 'Buzz' for multiples of 5, otherwise the number as a string.",
        (
            _ok(0, want=[]),
            _ok(1, want=["1"]),
            _ok(3, want=["1", "2", "Fizz"]),
            _ok(5, want=["1", "2", "Fizz", "4", "Buzz"]),
            _ok(15, want=_FIZZ_15),
        ),
    ),
    CodeTask(
        "is_prime",
        "is_prime(n: int) -> bool",
        "Return True if n is a prime number; numbers below 2 are not prime.",
        (
            _ok(-7, want=False),
            _ok(0, want=False),
            _ok(1, want=False),
            _ok(2, want=True),
            _ok(3, want=True),
            _ok(4, want=False),
            _ok(17, want=True),
            _ok(25, want=False),
            _ok(97, want=True),
            _ok(1000, want=False),
            _ok(7919, want=True),
        ),
    ),
    CodeTask(
        "gcd",
        "gcd(a: int, b: int) -> int",
        "Return the greatest common divisor of two non-negative integers; gcd(0, 0) is 0.",
        (
            _ok(12, 18, want=6),
            _ok(17, 5, want=1),
            _ok(0, 9, want=9),
            _ok(9, 0, want=9),
            _ok(0, 0, want=0),
            _ok(100, 75, want=25),
            _ok(270, 192, want=6),
        ),
    ),
    CodeTask(
        "reverse_words",
        "reverse_words(s: str) -> str",
        "Return the words of s (split on whitespace) in reverse order, joined by single spaces.",
        (
            _ok("hello world", want="world hello"),
            _ok("the quick brown fox", want="fox brown quick the"),
            _ok("single", want="single"),
            _ok("", want=""),
            _ok("  padded   words  ", want="words padded"),
            _ok("a b c", want="c b a"),
        ),
    ),
    CodeTask(
        "count_vowels",
        "count_vowels(s: str) -> int",
        "Return how many characters of s are vowels (a, e, i, o, u in either case); y is "
        "not a vowel.",
        (
            _ok("hello", want=2),
            _ok("AEIOU", want=5),
            _ok("rhythm", want=0),
            _ok("", want=0),
            _ok("Programming in Python", want=5),
            _ok("Yellow", want=2),
        ),
    ),
    CodeTask(
        "flatten",
        "flatten(items: list) -> list",
        "Flatten arbitrarily nested lists into one flat list, keeping the elements in order.",
        (
            _ok([[1, [2, 3]], 4], want=[1, 2, 3, 4]),
            _ok([], want=[]),
            _ok([[], [[]]], want=[]),
            _ok([1, 2, 3], want=[1, 2, 3]),
            _ok([["a", ["b", ["c"]]], "d"], want=["a", "b", "c", "d"]),
            _ok([[1], [2, [3, [4, [5]]]]], want=[1, 2, 3, 4, 5]),
        ),
    ),
    CodeTask(
        "run_length_encode",
        "run_length_encode(s: str) -> str",
        "Encode each run of a repeated character as the character followed by the run "
        "length, so 'aaab' becomes 'a3b1'.",
        (
            _ok("aaab", want="a3b1"),
            _ok("", want=""),
            _ok("abc", want="a1b1c1"),
            _ok("aaaaaaaaaaaa", want="a12"),
            _ok("aabbbcccc", want="a2b3c4"),
            _ok("abba", want="a1b2a1"),
        ),
    ),
    CodeTask(
        "binary_search",
        "binary_search(items: list[int], target: int) -> int",
        "items is sorted ascending with no duplicates; return the index of target, or -1 "
        "if it is not there.",
        (
            _ok([1, 3, 5, 7, 9], 7, want=3),
            _ok([1, 3, 5, 7, 9], 1, want=0),
            _ok([1, 3, 5, 7, 9], 9, want=4),
            _ok([1, 3, 5, 7, 9], 4, want=-1),
            _ok([], 3, want=-1),
            _ok([42], 42, want=0),
            _ok([-10, -3, 0, 8, 15, 22], -3, want=1),
        ),
    ),
    CodeTask(
        "is_anagram",
        "is_anagram(a: str, b: str) -> bool",
        "Return True if a and b are anagrams of each other, ignoring case and spaces.",
        (
            _ok("listen", "silent", want=True),
            _ok("Dormitory", "Dirty room", want=True),
            _ok("hello", "world", want=False),
            _ok("abc", "abcc", want=False),
            _ok("", "", want=True),
            _ok("Astronomer", "Moon starer", want=True),
            _ok("aab", "abb", want=False),
        ),
    ),
    CodeTask(
        "roman_to_int",
        "roman_to_int(s: str) -> int",
        "Convert a valid Roman numeral (I, V, X, L, C, D, M, with subtractive notation) to "
        "an integer.",
        (
            _ok("III", want=3),
            _ok("IV", want=4),
            _ok("IX", want=9),
            _ok("LVIII", want=58),
            _ok("XC", want=90),
            _ok("CD", want=400),
            _ok("MCMXCIV", want=1994),
            _ok("MMMCMXCIX", want=3999),
        ),
    ),
    # Inputs chosen so that C * 9 / 5 + 32, C * 1.8 + 32 and friends all give the same
    # float bit for bit: a correct formula must not fail on rounding.
    CodeTask(
        "celsius_to_fahrenheit",
        "celsius_to_fahrenheit(c: float) -> float",
        "Convert degrees Celsius to degrees Fahrenheit (F = C * 9 / 5 + 32).",
        (
            _ok(0, want=32.0),
            _ok(100, want=212.0),
            _ok(-40, want=-40.0),
            _ok(25, want=77.0),
            _ok(-10, want=14.0),
            _ok(37.5, want=99.5),
        ),
    ),
    CodeTask(
        "fahrenheit_to_celsius",
        "fahrenheit_to_celsius(f: float) -> float",
        "Convert degrees Fahrenheit to degrees Celsius (C = (F - 32) * 5 / 9).",
        (
            _ok(32, want=0.0),
            _ok(212, want=100.0),
            _ok(-40, want=-40.0),
            _ok(77, want=25.0),
            _ok(14, want=-10.0),
            _ok(50, want=10.0),
        ),
    ),
    CodeTask(
        "sum_of_digits",
        "sum_of_digits(n: int) -> int",
        "Return the sum of the decimal digits of n; the sign of a negative n is ignored.",
        (
            _ok(0, want=0),
            _ok(7, want=7),
            _ok(123, want=6),
            _ok(9999, want=36),
            _ok(-45, want=9),
            _ok(1000000, want=1),
        ),
    ),
    CodeTask(
        "fibonacci",
        "fibonacci(n: int) -> int",
        "Return the n-th Fibonacci number, with fibonacci(0) == 0 and fibonacci(1) == 1. "
        "Raise ValueError if n < 0.",
        (
            _ok(0, want=0),
            _ok(1, want=1),
            _ok(2, want=1),
            _ok(10, want=55),
            _ok(20, want=6765),
            _ok(50, want=12586269025),
            _raises(-1),
        ),
    ),
    CodeTask(
        "is_leap_year",
        "is_leap_year(year: int) -> bool",
        "Return True for a Gregorian leap year: divisible by 4, except centuries, which "
        "must be divisible by 400.",
        (
            _ok(2024, want=True),
            _ok(2023, want=False),
            _ok(1900, want=False),
            _ok(2000, want=True),
            _ok(2100, want=False),
            _ok(1996, want=True),
            _ok(2400, want=True),
        ),
    ),
    CodeTask(
        "capitalize_words",
        "capitalize_words(s: str) -> str",
        "Split s on whitespace, make each word's first letter uppercase and the rest "
        "lowercase, and join the words with single spaces.",
        (
            _ok("hello world", want="Hello World"),
            _ok("hELLO wORLD", want="Hello World"),
            _ok("  many   spaces here ", want="Many Spaces Here"),
            _ok("", want=""),
            _ok("a", want="A"),
            _ok("python is FUN", want="Python Is Fun"),
        ),
    ),
    CodeTask(
        "remove_duplicates",
        "remove_duplicates(items: list) -> list",
        "Return items without repeats, keeping the first occurrence of each value in its "
        "original order.",
        (
            _ok([1, 2, 2, 3, 1], want=[1, 2, 3]),
            _ok([], want=[]),
            _ok(["b", "a", "b", "c", "a"], want=["b", "a", "c"]),
            _ok([5, 5, 5], want=[5]),
            _ok([1, 2, 3], want=[1, 2, 3]),
            _ok([3, 1, 3, 2, 1], want=[3, 1, 2]),
        ),
    ),
    CodeTask(
        "second_largest",
        "second_largest(nums: list[int]) -> int",
        "Return the second largest distinct value in nums. Raise ValueError if nums has "
        "fewer than two distinct values.",
        (
            _ok([1, 2, 3], want=2),
            _ok([5, 5, 4], want=4),
            _ok([10, -1, 7, 10], want=7),
            _ok([-3, -1, -2], want=-2),
            _ok([2, 1], want=1),
            _raises([4, 4]),
            _raises([]),
        ),
    ),
    CodeTask(
        "chunk",
        "chunk(items: list, size: int) -> list[list]",
        "Split items into consecutive lists of length size (the last one may be shorter). "
        "Raise ValueError if size < 1.",
        (
            _ok([1, 2, 3, 4, 5], 2, want=[[1, 2], [3, 4], [5]]),
            _ok([1, 2, 3], 3, want=[[1, 2, 3]]),
            _ok([], 4, want=[]),
            _ok(["a", "b", "c"], 1, want=[["a"], ["b"], ["c"]]),
            _ok([1, 2], 5, want=[[1, 2]]),
            _raises([1, 2], 0),
        ),
    ),
    CodeTask(
        "word_count",
        "word_count(s: str) -> dict[str, int]",
        "Lowercase s, split it on whitespace and return a dict mapping each word to the "
        "number of times it occurs.",
        (
            _ok("the cat and the hat", want={"the": 2, "cat": 1, "and": 1, "hat": 1}),
            _ok("", want={}),
            _ok("Go go GO", want={"go": 3}),
            _ok("a b a", want={"a": 2, "b": 1}),
            _ok("  spaced   out  ", want={"spaced": 1, "out": 1}),
        ),
    ),
    CodeTask(
        "caesar_cipher",
        "caesar_cipher(s: str, shift: int) -> str",
        "Shift each letter of s by shift places in the alphabet, wrapping around and keeping "
        "its case; other characters are unchanged. shift may be negative or above 26.",
        (
            _ok("abc", 1, want="bcd"),
            _ok("xyz", 3, want="abc"),
            _ok("Hello, World!", 5, want="Mjqqt, Btwqi!"),
            _ok("bcd", -1, want="abc"),
            _ok("abc", 27, want="bcd"),
            _ok("Zebra", 26, want="Zebra"),
            _ok("", 4, want=""),
        ),
    ),
    CodeTask(
        "is_balanced",
        "is_balanced(s: str) -> bool",
        "Return True if the brackets (), [] and {} in s are balanced and properly nested; "
        "other characters are ignored.",
        (
            _ok("()", want=True),
            _ok("([]{})", want=True),
            _ok("(]", want=False),
            _ok("([)]", want=False),
            _ok("", want=True),
            _ok("(((", want=False),
            _ok("a(b[c]{d}e)f", want=True),
            _ok("}{", want=False),
            _ok("())", want=False),
        ),
    ),
    CodeTask(
        "max_subarray_sum",
        "max_subarray_sum(nums: list[int]) -> int",
        "Return the largest sum of a non-empty contiguous subarray of nums. Raise "
        "ValueError if nums is empty.",
        (
            _ok([-2, 1, -3, 4, -1, 2, 1, -5, 4], want=6),
            _ok([1], want=1),
            _ok([-3, -1, -2], want=-1),
            _ok([5, 4, -1, 7, 8], want=23),
            _ok([2, -1, 2], want=3),
            _raises([]),
        ),
    ),
    CodeTask(
        "merge_sorted",
        "merge_sorted(a: list[int], b: list[int]) -> list[int]",
        "Merge two ascending lists into one ascending list holding every element of both.",
        (
            _ok([1, 3, 5], [2, 4, 6], want=[1, 2, 3, 4, 5, 6]),
            _ok([], [1, 2], want=[1, 2]),
            _ok([1, 2], [], want=[1, 2]),
            _ok([], [], want=[]),
            _ok([1, 1, 3], [1, 2], want=[1, 1, 1, 2, 3]),
            _ok([-5, 0], [-6, 10], want=[-6, -5, 0, 10]),
        ),
    ),
    CodeTask(
        "to_binary",
        "to_binary(n: int) -> str",
        "Return the binary digits of a non-negative integer n with no prefix; to_binary(0) "
        "is '0'. Raise ValueError if n < 0.",
        (
            _ok(0, want="0"),
            _ok(1, want="1"),
            _ok(5, want="101"),
            _ok(8, want="1000"),
            _ok(255, want="11111111"),
            _ok(1024, want="10000000000"),
            _raises(-3),
        ),
    ),
    CodeTask(
        "from_binary",
        "from_binary(s: str) -> int",
        "Return the integer that a string of binary digits (0s and 1s) represents.",
        (
            _ok("0", want=0),
            _ok("1", want=1),
            _ok("101", want=5),
            _ok("1000", want=8),
            _ok("11111111", want=255),
            _ok("0011", want=3),
        ),
    ),
    CodeTask(
        "transpose",
        "transpose(matrix: list[list[int]]) -> list[list[int]]",
        "Return the transpose of a rectangular matrix given as a list of rows; an empty "
        "matrix gives [].",
        (
            _ok([[1, 2, 3], [4, 5, 6]], want=[[1, 4], [2, 5], [3, 6]]),
            _ok([[1]], want=[[1]]),
            _ok([], want=[]),
            _ok([[1, 2], [3, 4]], want=[[1, 3], [2, 4]]),
            _ok([[1], [2], [3]], want=[[1, 2, 3]]),
        ),
    ),
    CodeTask(
        "median",
        "median(nums: list[float]) -> float",
        "Return the median of nums (the mean of the two middle values when the length is "
        "even). Raise ValueError if nums is empty.",
        # Float inputs, so the answer is a float however it is computed.
        (
            _ok([3.0, 1.0, 2.0], want=2.0),
            _ok([4.0, 1.0, 3.0, 2.0], want=2.5),
            _ok([7.0], want=7.0),
            _ok([1.0, 2.0], want=1.5),
            _ok([5.0, 5.0, 5.0, 5.0], want=5.0),
            _ok([-1.0, -3.0, 10.0], want=-1.0),
            _raises([]),
        ),
    ),
    CodeTask(
        "longest_common_prefix",
        "longest_common_prefix(words: list[str]) -> str",
        "Return the longest string that every word in words starts with; return '' for an "
        "empty list.",
        (
            _ok(["flower", "flow", "flight"], want="fl"),
            _ok(["dog", "racecar", "car"], want=""),
            _ok([], want=""),
            _ok(["alone"], want="alone"),
            _ok(["interview", "internet", "interval"], want="inter"),
            _ok(["same", "same"], want="same"),
            _ok(["", "abc"], want=""),
        ),
    ),
    CodeTask(
        "is_power_of_two",
        "is_power_of_two(n: int) -> bool",
        "Return True if n is a positive power of two (1, 2, 4, 8, ...).",
        (
            _ok(1, want=True),
            _ok(2, want=True),
            _ok(0, want=False),
            _ok(-8, want=False),
            _ok(6, want=False),
            _ok(1024, want=True),
            _ok(1000, want=False),
        ),
    ),
    CodeTask(
        "lcm",
        "lcm(a: int, b: int) -> int",
        "Return the least common multiple of two positive integers.",
        (
            _ok(4, 6, want=12),
            _ok(3, 5, want=15),
            _ok(7, 7, want=7),
            _ok(1, 9, want=9),
            _ok(12, 18, want=36),
            _ok(21, 6, want=42),
        ),
    ),
    CodeTask(
        "rotate_right",
        "rotate_right(items: list, k: int) -> list",
        "Return a new list with items rotated k places to the right; k may exceed the "
        "length, and an empty list stays empty.",
        (
            _ok([1, 2, 3, 4, 5], 2, want=[4, 5, 1, 2, 3]),
            _ok([1, 2, 3], 0, want=[1, 2, 3]),
            _ok([1, 2, 3], 3, want=[1, 2, 3]),
            _ok([1, 2, 3], 4, want=[3, 1, 2]),
            _ok([], 5, want=[]),
            _ok(["a", "b"], 1, want=["b", "a"]),
        ),
    ),
    CodeTask(
        "most_common_char",
        "most_common_char(s: str) -> str",
        "Return the character that occurs most often in s, and on a tie the one that "
        "appears first. Raise ValueError if s is empty.",
        (
            _ok("hello", want="l"),
            _ok("aabb", want="a"),
            _ok("abcabcb", want="b"),
            _ok("x", want="x"),
            _ok("bbaa", want="b"),
            _ok("mississippi", want="i"),
            _raises(""),
        ),
    ),
    CodeTask(
        "camel_to_snake",
        "camel_to_snake(s: str) -> str",
        "Convert camelCase or PascalCase to snake_case: put an underscore before every "
        "uppercase letter except a leading one, then lowercase everything.",
        (
            _ok("camelCase", want="camel_case"),
            _ok("PascalCase", want="pascal_case"),
            _ok("thisIsATest", want="this_is_a_test"),
            _ok("simple", want="simple"),
            _ok("", want=""),
            _ok("userId", want="user_id"),
        ),
    ),
    CodeTask(
        "snake_to_camel",
        "snake_to_camel(s: str) -> str",
        "Convert lowercase snake_case to camelCase: the first word stays lowercase and each "
        "later word starts with an uppercase letter.",
        (
            _ok("hello_world", want="helloWorld"),
            _ok("snake_case_name", want="snakeCaseName"),
            _ok("single", want="single"),
            _ok("", want=""),
            _ok("a_b_c", want="aBC"),
            _ok("user_id", want="userId"),
        ),
    ),
    CodeTask(
        "primes_up_to",
        "primes_up_to(n: int) -> list[int]",
        "Return all prime numbers less than or equal to n, in ascending order.",
        (
            _ok(0, want=[]),
            _ok(1, want=[]),
            _ok(2, want=[2]),
            _ok(10, want=[2, 3, 5, 7]),
            _ok(13, want=[2, 3, 5, 7, 11, 13]),
            _ok(30, want=[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]),
        ),
    ),
    CodeTask(
        "two_sum",
        "two_sum(nums: list[int], target: int) -> list[int]",
        "Return [i, j] with i < j such that nums[i] + nums[j] == target; exactly one such "
        "pair exists.",
        (
            _ok([2, 7, 11, 15], 9, want=[0, 1]),
            _ok([3, 2, 4], 6, want=[1, 2]),
            _ok([3, 3], 6, want=[0, 1]),
            _ok([1, 5, 9, -2], 7, want=[2, 3]),
            _ok([0, 4, 3, 0], 0, want=[0, 3]),
            _ok([-1, -2, -3, -4, -5], -8, want=[2, 4]),
        ),
    ),
    CodeTask(
        "digital_root",
        "digital_root(n: int) -> int",
        "Repeatedly sum the decimal digits of a non-negative integer n until a single digit "
        "remains, and return it.",
        (
            _ok(0, want=0),
            _ok(9, want=9),
            _ok(38, want=2),
            _ok(123, want=6),
            _ok(9875, want=2),
            _ok(999999999999, want=9),
        ),
    ),
    CodeTask(
        "is_pangram",
        "is_pangram(s: str) -> bool",
        "Return True if s contains every letter of the English alphabet at least once, "
        "ignoring case.",
        (
            _ok("The quick brown fox jumps over the lazy dog", want=True),
            _ok("Hello world", want=False),
            _ok("", want=False),
            _ok("abcdefghijklmnopqrstuvwxyz", want=True),
            _ok("ABCDEFGHIJKLMNOPQRSTUVWXY", want=False),
            _ok("Pack my box with five dozen liquor jugs.", want=True),
        ),
    ),
    CodeTask(
        "hamming_distance",
        "hamming_distance(a: str, b: str) -> int",
        "Return the number of positions at which a and b differ. Raise ValueError if their "
        "lengths differ.",
        (
            _ok("karolin", "kathrin", want=3),
            _ok("1011101", "1001001", want=2),
            _ok("", "", want=0),
            _ok("abc", "abc", want=0),
            _ok("aaaa", "bbbb", want=4),
            _raises("abc", "ab"),
        ),
    ),
    CodeTask(
        "collatz_steps",
        "collatz_steps(n: int) -> int",
        "Return how many steps the Collatz rule (n // 2 if n is even, else 3 * n + 1) takes "
        "to reach 1. Raise ValueError if n < 1.",
        (
            _ok(1, want=0),
            _ok(2, want=1),
            _ok(3, want=7),
            _ok(6, want=8),
            _ok(27, want=111),
            _raises(0),
        ),
    ),
    CodeTask(
        "clamp",
        "clamp(x: int, low: int, high: int) -> int",
        "Return x limited to the inclusive range low..high (low <= high).",
        (
            _ok(5, 0, 10, want=5),
            _ok(-3, 0, 10, want=0),
            _ok(15, 0, 10, want=10),
            _ok(0, 0, 0, want=0),
            _ok(10, 0, 10, want=10),
            _ok(-5, -10, -1, want=-5),
        ),
    ),
    CodeTask(
        "interleave",
        "interleave(a: list, b: list) -> list",
        "Alternate the elements of a and b, starting with a; once one list runs out, append "
        "the rest of the other.",
        (
            _ok([1, 2, 3], ["a", "b", "c"], want=[1, "a", 2, "b", 3, "c"]),
            _ok([1, 2, 3, 4], [9], want=[1, 9, 2, 3, 4]),
            _ok([], [1, 2], want=[1, 2]),
            _ok([], [], want=[]),
            _ok([1], [2, 3, 4], want=[1, 2, 3, 4]),
        ),
    ),
    CodeTask(
        "average",
        "average(nums: list[float]) -> float",
        "Return the arithmetic mean of nums. Raise ValueError if nums is empty.",
        (
            _ok([1, 2, 3], want=2.0),
            _ok([5], want=5.0),
            _ok([1, 2], want=1.5),
            _ok([-4, 4], want=0.0),
            _ok([10, 20, 30, 40], want=25.0),
            _raises([]),
        ),
    ),
    CodeTask(
        "ordinal",
        "ordinal(n: int) -> str",
        "Return the non-negative integer n followed by its English ordinal suffix, as in "
        "1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st.",
        (
            _ok(1, want="1st"),
            _ok(2, want="2nd"),
            _ok(3, want="3rd"),
            _ok(4, want="4th"),
            _ok(11, want="11th"),
            _ok(12, want="12th"),
            _ok(13, want="13th"),
            _ok(21, want="21st"),
            _ok(22, want="22nd"),
            _ok(101, want="101st"),
            _ok(111, want="111th"),
            _ok(0, want="0th"),
        ),
    ),
    CodeTask(
        "is_sorted",
        "is_sorted(items: list[int]) -> bool",
        "Return True if items is in non-decreasing order.",
        (
            _ok([], want=True),
            _ok([1], want=True),
            _ok([1, 2, 2, 3], want=True),
            _ok([3, 2], want=False),
            _ok([1, 3, 2], want=False),
            _ok([-5, 0, 5], want=True),
        ),
    ),
    CodeTask(
        "pascal_row",
        "pascal_row(n: int) -> list[int]",
        "Return row n of Pascal's triangle, where row 0 is [1]. Raise ValueError if n < 0.",
        (
            _ok(0, want=[1]),
            _ok(1, want=[1, 1]),
            _ok(2, want=[1, 2, 1]),
            _ok(4, want=[1, 4, 6, 4, 1]),
            _ok(6, want=[1, 6, 15, 20, 15, 6, 1]),
            _raises(-1),
        ),
    ),
    CodeTask(
        "max_profit",
        "max_profit(prices: list[int]) -> int",
        "Given prices by day, return the largest profit from buying on one day and selling "
        "on a later day, or 0 if no profit is possible.",
        (
            _ok([7, 1, 5, 3, 6, 4], want=5),
            _ok([7, 6, 4, 3, 1], want=0),
            _ok([], want=0),
            _ok([5], want=0),
            _ok([2, 4, 1, 7], want=6),
            _ok([3, 3, 3], want=0),
        ),
    ),
    CodeTask(
        "dot_product",
        "dot_product(a: list[int], b: list[int]) -> int",
        "Return the dot product of two lists of equal length. Raise ValueError if their "
        "lengths differ.",
        (
            _ok([1, 2, 3], [4, 5, 6], want=32),
            _ok([], [], want=0),
            _ok([2], [-3], want=-6),
            _ok([1, 0, -1], [5, 5, 5], want=0),
            _ok([10, 20], [3, 4], want=110),
            _raises([1, 2], [1]),
        ),
    ),
    CodeTask(
        "count_bits",
        "count_bits(n: int) -> int",
        "Return the number of 1 bits in the binary representation of a non-negative integer n.",
        (
            _ok(0, want=0),
            _ok(1, want=1),
            _ok(7, want=3),
            _ok(8, want=1),
            _ok(12, want=2),
            _ok(255, want=8),
            _ok(1023, want=10),
        ),
    ),
    CodeTask(
        "is_perfect_square",
        "is_perfect_square(n: int) -> bool",
        "Return True if n is the square of an integer; negative numbers are not.",
        (
            _ok(0, want=True),
            _ok(1, want=True),
            _ok(16, want=True),
            _ok(15, want=False),
            _ok(2, want=False),
            _ok(-4, want=False),
            _ok(1000000, want=True),
            _ok(999999, want=False),
        ),
    ),
    CodeTask(
        "seconds_to_hms",
        "seconds_to_hms(seconds: int) -> str",
        "Format a non-negative number of seconds as 'HH:MM:SS', each field at least two "
        "digits; hours are not wrapped at 24.",
        (
            _ok(0, want="00:00:00"),
            _ok(59, want="00:00:59"),
            _ok(60, want="00:01:00"),
            _ok(3661, want="01:01:01"),
            _ok(86399, want="23:59:59"),
            _ok(90000, want="25:00:00"),
        ),
    ),
)


def _src(code: str) -> str:
    return textwrap.dedent(code).strip() + "\n"


# One straightforward solution per task, as a self-contained module source (imports
# inside), so it can be exec'd alone and also serve as the prompt's reference answer.
REFERENCE_SOLUTIONS: dict[str, str] = {
    "is_palindrome": _src(
        """
        def is_palindrome(s: str) -> bool:
            cleaned = [c.lower() for c in s if c.isalnum()]
            return cleaned == cleaned[::-1]
        """
    ),
    "int_to_roman": _src(
        """
        def int_to_roman(n: int) -> str:
            values = [
                (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"),
                (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
            ]
            out = []
            for value, numeral in values:
                count, n = divmod(n, value)
                out.append(numeral * count)
            return "".join(out)
        """
    ),
    "factorial": _src(
        """
        def factorial(n: int) -> int:
            if n < 0:
                raise ValueError("n must be non-negative")
            result = 1
            for i in range(2, n + 1):
                result *= i
            return result
        """
    ),
    "slugify": _src(
        """
        import re


        def slugify(s: str) -> str:
            return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")
        """
    ),
    "fizzbuzz": _src(
        """
        def fizzbuzz(n: int) -> list[str]:
            out = []
            for i in range(1, n + 1):
                if i % 15 == 0:
                    out.append("FizzBuzz")
                elif i % 3 == 0:
                    out.append("Fizz")
                elif i % 5 == 0:
                    out.append("Buzz")
                else:
                    out.append(str(i))
            return out
        """
    ),
    "is_prime": _src(
        """
        def is_prime(n: int) -> bool:
            if n < 2:
                return False
            i = 2
            while i * i <= n:
                if n % i == 0:
                    return False
                i += 1
            return True
        """
    ),
    "gcd": _src(
        """
        def gcd(a: int, b: int) -> int:
            while b:
                a, b = b, a % b
            return a
        """
    ),
    "reverse_words": _src(
        """
        def reverse_words(s: str) -> str:
            return " ".join(reversed(s.split()))
        """
    ),
    "count_vowels": _src(
        """
        def count_vowels(s: str) -> int:
            return sum(1 for c in s.lower() if c in "aeiou")
        """
    ),
    "flatten": _src(
        """
        def flatten(items: list) -> list:
            out = []
            for item in items:
                if isinstance(item, list):
                    out.extend(flatten(item))
                else:
                    out.append(item)
            return out
        """
    ),
    "run_length_encode": _src(
        """
        def run_length_encode(s: str) -> str:
            out = []
            i = 0
            while i < len(s):
                j = i
                while j < len(s) and s[j] == s[i]:
                    j += 1
                out.append(f"{s[i]}{j - i}")
                i = j
            return "".join(out)
        """
    ),
    "binary_search": _src(
        """
        def binary_search(items: list[int], target: int) -> int:
            lo, hi = 0, len(items) - 1
            while lo <= hi:
                mid = (lo + hi) // 2
                if items[mid] == target:
                    return mid
                if items[mid] < target:
                    lo = mid + 1
                else:
                    hi = mid - 1
            return -1
        """
    ),
    "is_anagram": _src(
        """
        def is_anagram(a: str, b: str) -> bool:
            def norm(s: str) -> list[str]:
                return sorted(s.replace(" ", "").lower())

            return norm(a) == norm(b)
        """
    ),
    "roman_to_int": _src(
        """
        def roman_to_int(s: str) -> int:
            values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
            total = 0
            for i, c in enumerate(s):
                v = values[c]
                if i + 1 < len(s) and values[s[i + 1]] > v:
                    total -= v
                else:
                    total += v
            return total
        """
    ),
    "celsius_to_fahrenheit": _src(
        """
        def celsius_to_fahrenheit(c: float) -> float:
            return c * 9 / 5 + 32
        """
    ),
    "fahrenheit_to_celsius": _src(
        """
        def fahrenheit_to_celsius(f: float) -> float:
            return (f - 32) * 5 / 9
        """
    ),
    "sum_of_digits": _src(
        """
        def sum_of_digits(n: int) -> int:
            return sum(int(d) for d in str(abs(n)))
        """
    ),
    "fibonacci": _src(
        """
        def fibonacci(n: int) -> int:
            if n < 0:
                raise ValueError("n must be non-negative")
            a, b = 0, 1
            for _ in range(n):
                a, b = b, a + b
            return a
        """
    ),
    "is_leap_year": _src(
        """
        def is_leap_year(year: int) -> bool:
            return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        """
    ),
    "capitalize_words": _src(
        """
        def capitalize_words(s: str) -> str:
            return " ".join(w[:1].upper() + w[1:].lower() for w in s.split())
        """
    ),
    "remove_duplicates": _src(
        """
        def remove_duplicates(items: list) -> list:
            out = []
            for item in items:
                if item not in out:
                    out.append(item)
            return out
        """
    ),
    "second_largest": _src(
        """
        def second_largest(nums: list[int]) -> int:
            distinct = sorted(set(nums))
            if len(distinct) < 2:
                raise ValueError("need at least two distinct values")
            return distinct[-2]
        """
    ),
    "chunk": _src(
        """
        def chunk(items: list, size: int) -> list[list]:
            if size < 1:
                raise ValueError("size must be at least 1")
            return [items[i : i + size] for i in range(0, len(items), size)]
        """
    ),
    "word_count": _src(
        """
        def word_count(s: str) -> dict[str, int]:
            counts: dict[str, int] = {}
            for word in s.lower().split():
                counts[word] = counts.get(word, 0) + 1
            return counts
        """
    ),
    "caesar_cipher": _src(
        """
        def caesar_cipher(s: str, shift: int) -> str:
            out = []
            for c in s:
                if "a" <= c <= "z":
                    out.append(chr((ord(c) - ord("a") + shift) % 26 + ord("a")))
                elif "A" <= c <= "Z":
                    out.append(chr((ord(c) - ord("A") + shift) % 26 + ord("A")))
                else:
                    out.append(c)
            return "".join(out)
        """
    ),
    "is_balanced": _src(
        """
        def is_balanced(s: str) -> bool:
            pairs = {")": "(", "]": "[", "}": "{"}
            stack = []
            for c in s:
                if c in "([{":
                    stack.append(c)
                elif c in pairs:
                    if not stack or stack.pop() != pairs[c]:
                        return False
            return not stack
        """
    ),
    "max_subarray_sum": _src(
        """
        def max_subarray_sum(nums: list[int]) -> int:
            if not nums:
                raise ValueError("nums is empty")
            best = current = nums[0]
            for x in nums[1:]:
                current = max(x, current + x)
                best = max(best, current)
            return best
        """
    ),
    "merge_sorted": _src(
        """
        def merge_sorted(a: list[int], b: list[int]) -> list[int]:
            out = []
            i = j = 0
            while i < len(a) and j < len(b):
                if a[i] <= b[j]:
                    out.append(a[i])
                    i += 1
                else:
                    out.append(b[j])
                    j += 1
            return out + a[i:] + b[j:]
        """
    ),
    "to_binary": _src(
        """
        def to_binary(n: int) -> str:
            if n < 0:
                raise ValueError("n must be non-negative")
            if n == 0:
                return "0"
            digits = []
            while n:
                digits.append(str(n % 2))
                n //= 2
            return "".join(reversed(digits))
        """
    ),
    "from_binary": _src(
        """
        def from_binary(s: str) -> int:
            value = 0
            for c in s:
                value = value * 2 + (c == "1")
            return value
        """
    ),
    "transpose": _src(
        """
        def transpose(matrix: list[list[int]]) -> list[list[int]]:
            return [list(column) for column in zip(*matrix)]
        """
    ),
    "median": _src(
        """
        def median(nums: list[float]) -> float:
            if not nums:
                raise ValueError("nums is empty")
            ordered = sorted(nums)
            mid = len(ordered) // 2
            if len(ordered) % 2:
                return ordered[mid]
            return (ordered[mid - 1] + ordered[mid]) / 2
        """
    ),
    "longest_common_prefix": _src(
        """
        def longest_common_prefix(words: list[str]) -> str:
            if not words:
                return ""
            prefix = words[0]
            for word in words[1:]:
                while not word.startswith(prefix):
                    prefix = prefix[:-1]
            return prefix
        """
    ),
    "is_power_of_two": _src(
        """
        def is_power_of_two(n: int) -> bool:
            return n > 0 and n & (n - 1) == 0
        """
    ),
    "lcm": _src(
        """
        def lcm(a: int, b: int) -> int:
            x, y = a, b
            while y:
                x, y = y, x % y
            return a * b // x
        """
    ),
    "rotate_right": _src(
        """
        def rotate_right(items: list, k: int) -> list:
            if not items:
                return []
            k %= len(items)
            return items[-k:] + items[:-k] if k else list(items)
        """
    ),
    "most_common_char": _src(
        """
        def most_common_char(s: str) -> str:
            if not s:
                raise ValueError("s is empty")
            counts: dict[str, int] = {}
            for c in s:
                counts[c] = counts.get(c, 0) + 1
            # max keeps the first of equal keys, and dicts keep first-seen order.
            return max(counts, key=counts.__getitem__)
        """
    ),
    "camel_to_snake": _src(
        """
        def camel_to_snake(s: str) -> str:
            out = []
            for i, c in enumerate(s):
                if c.isupper() and i > 0:
                    out.append("_")
                out.append(c.lower())
            return "".join(out)
        """
    ),
    "snake_to_camel": _src(
        """
        def snake_to_camel(s: str) -> str:
            first, *rest = s.split("_")
            return first + "".join(w[:1].upper() + w[1:] for w in rest)
        """
    ),
    "primes_up_to": _src(
        """
        def primes_up_to(n: int) -> list[int]:
            if n < 2:
                return []
            sieve = [True] * (n + 1)
            sieve[0] = sieve[1] = False
            for i in range(2, int(n**0.5) + 1):
                if sieve[i]:
                    for j in range(i * i, n + 1, i):
                        sieve[j] = False
            return [i for i, is_p in enumerate(sieve) if is_p]
        """
    ),
    "two_sum": _src(
        """
        def two_sum(nums: list[int], target: int) -> list[int]:
            seen: dict[int, int] = {}
            for j, x in enumerate(nums):
                if target - x in seen:
                    return [seen[target - x], j]
                seen.setdefault(x, j)
            return []
        """
    ),
    "digital_root": _src(
        """
        def digital_root(n: int) -> int:
            while n >= 10:
                n = sum(int(d) for d in str(n))
            return n
        """
    ),
    "is_pangram": _src(
        """
        import string


        def is_pangram(s: str) -> bool:
            return set(string.ascii_lowercase) <= set(s.lower())
        """
    ),
    "hamming_distance": _src(
        """
        def hamming_distance(a: str, b: str) -> int:
            if len(a) != len(b):
                raise ValueError("lengths differ")
            return sum(x != y for x, y in zip(a, b))
        """
    ),
    "collatz_steps": _src(
        """
        def collatz_steps(n: int) -> int:
            if n < 1:
                raise ValueError("n must be at least 1")
            steps = 0
            while n != 1:
                n = n // 2 if n % 2 == 0 else 3 * n + 1
                steps += 1
            return steps
        """
    ),
    "clamp": _src(
        """
        def clamp(x: int, low: int, high: int) -> int:
            return max(low, min(x, high))
        """
    ),
    "interleave": _src(
        """
        def interleave(a: list, b: list) -> list:
            out = []
            for i in range(max(len(a), len(b))):
                if i < len(a):
                    out.append(a[i])
                if i < len(b):
                    out.append(b[i])
            return out
        """
    ),
    "average": _src(
        """
        def average(nums: list[float]) -> float:
            if not nums:
                raise ValueError("nums is empty")
            return sum(nums) / len(nums)
        """
    ),
    "ordinal": _src(
        """
        def ordinal(n: int) -> str:
            if n % 100 in (11, 12, 13):
                suffix = "th"
            else:
                suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
            return f"{n}{suffix}"
        """
    ),
    "is_sorted": _src(
        """
        def is_sorted(items: list[int]) -> bool:
            return all(a <= b for a, b in zip(items, items[1:]))
        """
    ),
    "pascal_row": _src(
        """
        def pascal_row(n: int) -> list[int]:
            if n < 0:
                raise ValueError("n must be non-negative")
            row = [1]
            for _ in range(n):
                row = [1] + [a + b for a, b in zip(row, row[1:])] + [1]
            return row
        """
    ),
    "max_profit": _src(
        """
        def max_profit(prices: list[int]) -> int:
            best = 0
            lowest = None
            for p in prices:
                if lowest is None or p < lowest:
                    lowest = p
                best = max(best, p - lowest)
            return best
        """
    ),
    "dot_product": _src(
        """
        def dot_product(a: list[int], b: list[int]) -> int:
            if len(a) != len(b):
                raise ValueError("lengths differ")
            return sum(x * y for x, y in zip(a, b))
        """
    ),
    "count_bits": _src(
        """
        def count_bits(n: int) -> int:
            count = 0
            while n:
                count += n & 1
                n >>= 1
            return count
        """
    ),
    "is_perfect_square": _src(
        """
        import math


        def is_perfect_square(n: int) -> bool:
            return n >= 0 and math.isqrt(n) ** 2 == n
        """
    ),
    "seconds_to_hms": _src(
        """
        def seconds_to_hms(seconds: int) -> str:
            minutes, secs = divmod(seconds, 60)
            hours, minutes = divmod(minutes, 60)
            return f"{hours:02d}:{minutes:02d}:{secs:02d}"
        """
    ),
}


def split_of(name: str) -> str:
    """The split of a function: by name alone, so it never sits on both sides."""
    return split_for(f"{FAMILY}:{name}")


def prompts(suite: str) -> list[TaskPrompt]:
    """One prompt per task, in the order of TASKS; the split comes from the name."""
    return [
        TaskPrompt.make(
            suite, FAMILY, split_of(t.name), t.user_text, t.spec, REFERENCE_SOLUTIONS[t.name]
        )
        for t in TASKS
    ]
