from embeddings.training.splits import is_held_out


def test_split_is_stable_and_close_to_the_fraction() -> None:
    ids = [str(i) for i in range(10_000, 20_000)]
    held_out = [item_id for item_id in ids if is_held_out(item_id)]
    assert 0.18 < len(held_out) / len(ids) < 0.22
    assert held_out == [item_id for item_id in ids if is_held_out(item_id)]
    assert not any(is_held_out(item_id, fraction=0.0) for item_id in ids[:100])
    assert all(is_held_out(item_id, fraction=1.0) for item_id in ids[:100])
    assert [is_held_out(i, salt="other") for i in ids[:200]] != [is_held_out(i) for i in ids[:200]]
