import json
import math

import numpy as np

from manylift._core.atomic import atomic_path, write_json


def test_write_json_converts_numpy_and_nan(tmp_path):
    p = write_json(tmp_path / "r.json", {"a": np.float64(1.5), "b": np.arange(3), "c": math.nan})
    assert json.loads(p.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None}


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
