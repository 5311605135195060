"""The one thing pyproject.toml cannot say without an experimental table: the sandbox's
compiled part (`filters/sandbox/_spawn.c`: a program's clone, reaping and set-up). An
editable install (`make setup`) builds it beside its source, where the zygote loads it."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("distillery.filters.sandbox._spawn", ["filters/sandbox/_spawn.c"]),
    ]
)
