"""The prompt a suite produces and the protocol every suite follows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from distillery.filters.spec import validate_spec
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import PromptRecord

TRAIN = "train"
TEST = "test"
SPLITS = (TRAIN, TEST)


@dataclass(frozen=True)
class TaskPrompt:
    suite: str
    family: str
    split: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs, in order
    verifier: str  # canonical JSON of the verifier spec
    reference: str | None = None

    @classmethod
    def make(
        cls,
        suite: str,
        family: str,
        split: str,
        user: str,
        verifier: dict[str, Any],
        reference: str | None = None,
        system: str | None = None,
    ) -> TaskPrompt:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        validate_spec(verifier, f"{suite}/{family}")
        messages = ((("system", system),) if system else ()) + (("user", user),)
        return cls(suite, family, split, messages, canonical_json(verifier), reference)

    @property
    def prompt_id(self) -> str:
        return content_id("prm", self.suite, self.chat, json.loads(self.verifier))

    @property
    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def to_record(self, run_id: str) -> PromptRecord:
        return PromptRecord(
            prompt_id=self.prompt_id,
            suite=self.suite,
            family=self.family,
            split=self.split,
            messages=canonical_json(self.chat),
            verifier=self.verifier,
            reference=self.reference,
            run_id=run_id,
        )


def split_for(key: str, test_fraction: float = 1 / 3) -> str:
    """A stable split from a key: the same item lands in the same split however the list grows."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return TEST if bucket < test_fraction else TRAIN


class Suite(Protocol):
    name: str

    def prompts(self) -> list[TaskPrompt]:
        """Every prompt of the suite, both splits, in a stable order."""
        ...
