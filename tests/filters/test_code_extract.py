from distillery.filters.code_extract import extract_code


def test_fenced_block_defining_the_entry_point_wins():
    text = "Use this:\n```\nprint('x')\n```\nor\n```python\ndef f(a):\n    return a\n```\n"
    assert extract_code(text, "f") == "def f(a):\n    return a\n"


def test_bare_code_from_its_first_def_or_import():
    text = "Sure!\nimport math\ndef f(a):\n    return math.sqrt(a)\n"
    assert extract_code(text, "f") == "import math\ndef f(a):\n    return math.sqrt(a)\n"


def test_body_only_continuation_goes_under_the_prefix():
    prefix = 'def f(a):\n    """doc"""\n'
    code = extract_code("    return a + 1\n", "f", prefix)
    assert code == prefix + "    return a + 1\n"
    ns = {}
    exec(code, ns)
    assert ns["f"](1) == 2


def test_full_function_keeps_the_prompts_helpers():
    prefix = 'def helper(x):\n    return x * 2\n\ndef f(a):\n    """doc"""\n'
    code = extract_code("```python\ndef f(a):\n    return helper(a)\n```", "f", prefix)
    ns = {}
    exec(code, ns)
    assert ns["f"](3) == 6


def test_no_code():
    assert extract_code("I cannot help with that.", "f") is None
    assert extract_code("", "f", "def f():\n    pass\n") is None
