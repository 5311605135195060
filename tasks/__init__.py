"""Built-in task suites as data plus loaders: seed families, HumanEval, user files."""
