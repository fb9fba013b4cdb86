import numpy as np
import pytest

from recsys import artifacts


def test_save_is_atomic_and_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a" / "scores.npz"
    artifacts.save_npz_atomic(target, x=np.arange(3))
    with np.load(target) as data:
        assert data["x"].tolist() == [0, 1, 2]

    def half_write(path, **arrays):
        with open(path, "wb") as fh:
            fh.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts.np, "savez", half_write)
    with pytest.raises(OSError, match="No space"):
        artifacts.save_npz_atomic(target, x=np.arange(5))
    with np.load(target) as data:  # the previous file is intact
        assert data["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in target.parent.iterdir()) == ["scores.npz"]
