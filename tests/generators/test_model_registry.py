import pytest
import torch

from distillery.generators import model_registry
from distillery.generators.model_registry import ModelError, resolve


def test_tiny_random_resolves_without_weights_and_says_it_is_untrained():
    a, b = resolve("tiny-random"), resolve("tiny-random")
    assert a == b and a.model_id.startswith("mdl-")
    assert a.trained is False and a.path is None
    assert "not a trained model" in model_registry.ALIASES["tiny-random"].description


def test_tiny_random_is_deterministic_and_does_not_touch_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    m1, tok = model_registry.load(resolve("tiny-random"))
    after = torch.rand(1)
    assert torch.equal(before, after)
    m2, _ = model_registry.load(resolve("tiny-random"))
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    text = "héllo <b>wörld</b> 123"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_unknown_model_names_the_choices():
    with pytest.raises(
        ModelError, match=r"unknown model 'no-such-model'; use an alias \(smollm2-135m"
    ):
        resolve("no-such-model")


def test_a_directory_resolves_by_weight_content(tmp_path):
    model, tok = model_registry.load(resolve("tiny-random"))
    d1, d2 = tmp_path / "a", tmp_path / "b"
    for d in (d1, d2):
        model.save_pretrained(d)
        tok.save_pretrained(d)
    r1, r2 = resolve(str(d1)), resolve(str(d2))
    assert r1.model_id == r2.model_id and r1.source_kind == "dir" and r1.path == str(d1)
    loaded, _ = model_registry.load(r1)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())


def test_a_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelError, match="not a model directory"):
        resolve(str(tmp_path))


def test_the_default_model_ships_as_gguf():
    path = model_registry.gguf_location(model_registry.ALIASES["smollm2-135m"])
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def _model_dir(path, marker):
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "SOURCE").write_text(marker)
    return path


def test_a_converted_model_is_published_once_and_a_late_copy_is_dropped(tmp_path):
    dest = tmp_path / "smollm2-135m"
    model_registry.publish(_model_dir(tmp_path / "a.tmp", "first"), dest)
    assert (dest / "SOURCE").read_text() == "first"
    # A second process finished converting after the first: readers keep the first copy.
    model_registry.publish(_model_dir(tmp_path / "b.tmp", "second"), dest)
    assert (dest / "SOURCE").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2-135m"]


def test_a_leftover_without_a_model_is_replaced(tmp_path):
    dest = tmp_path / "smollm2-135m"
    (dest / "partial").mkdir(parents=True)
    model_registry.publish(_model_dir(tmp_path / "a.tmp", "fresh"), dest)
    assert (dest / "SOURCE").read_text() == "fresh" and not (dest / "partial").exists()


def _tiny_gguf(path, name):
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_conversion_reads_each_gguf_file_and_builds_each_name_map_once(tmp_path):
    import gguf

    a, b = _tiny_gguf(tmp_path / "a.gguf", "a"), _tiny_gguf(tmp_path / "b.gguf", "b")
    make_reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with model_registry._gguf_read_once():
        # As transformers calls them: looked up on the module, for config, tokenizer, weights.
        first = gguf.GGUFReader(a)
        assert gguf.GGUFReader(str(a)) is first
        other = gguf.GGUFReader(b)
        assert other is not first and isinstance(other, make_reader)
        assert bytes(other.fields["general.name"].parts[-1]).decode() == "b"
        names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is names
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 3) is not names
        assert names.get_name("model.layers.1.self_attn.q_proj") == "blk.1.attn_q"
    assert gguf.GGUFReader is make_reader and gguf.get_tensor_name_map is name_map
    with pytest.raises(RuntimeError), model_registry._gguf_read_once():
        raise RuntimeError("a failed conversion")
    assert gguf.GGUFReader is make_reader and gguf.get_tensor_name_map is name_map
    assert gguf.GGUFReader(a) is not gguf.GGUFReader(a)  # outside a conversion: as shipped
