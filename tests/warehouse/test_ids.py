from distillery.warehouse.ids import canonical_json, content_id, event_id


def test_content_id_is_stable_and_order_insensitive_for_dict_keys():
    a = content_id("prm", "s", {"b": 1, "a": [1, 2]})
    b = content_id("prm", "s", {"a": [1, 2], "b": 1})
    assert a == b
    assert a.startswith("prm-") and len(a) == 4 + 24


def test_content_id_changes_with_any_part():
    base = content_id("smp", "p", "m", 0)
    assert content_id("smp", "p", "m", 1) != base
    assert content_id("smp", "p", "m2", 0) != base
    assert content_id("xyz", "p", "m", 0) != base


def test_canonical_json_keeps_unicode():
    assert canonical_json({"k": "é"}) == '{"k":"é"}'


def test_event_ids_are_unique():
    assert len({event_id("run") for _ in range(1000)}) == 1000
