"""``bench/compare.py`` end to end at a tiny load: both servers answer the same generator, and
the fan-out delivers everything in order. Correctness only: no figure is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMPARE = Path(__file__).resolve().parents[2] / "bench" / "compare.py"


@pytest.mark.parametrize("reference_rest", ["fastapi", "starlette"])
def test_compare_drives_our_server_and_the_reference_with_the_same_load(
    tmp_path: Path, reference_rest: str
) -> None:
    argv = [sys.executable, str(COMPARE), "--rounds", "1", "--duration", "1"]
    argv += ["--reference-rest", reference_rest]
    argv += ["--receivers", "4", "--receiver-procs", "2", "--max-messages", "200"]
    argv += ["--max-requests", "200", "--cases", "fanout-200,rest-post-16"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        lines[record["case"]] = record
    assert set(lines) == {"fanout-200", "rest-post-16"}
    assert lines["rest-post-16"]["reference_rest"] == reference_rest

    for kind in ("ours", "reference"):
        (fan,) = lines["fanout-200"]["runs"][kind]
        assert "error" not in fan, fan
        assert fan["messages_sent"] > 0, fan
        assert fan["lost_messages"] == 0, fan
        assert fan["seq_out_of_order"] == 0, fan
        assert fan["drain_complete"] is True, fan
        assert fan["saturated"] in {"server", "generator", "machine", "none"}

        (rest,) = lines["rest-post-16"]["runs"][kind]
        assert "error" not in rest, rest
        assert set(rest["statuses"]) == {"201"}, rest  # every request answered, none refused
        assert rest["requests_per_s"] > 0
    assert lines["fanout-200"]["ratio"] is not None
    assert lines["rest-post-16"]["ratio"] is not None
