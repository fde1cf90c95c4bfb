"""Benchmarks without their data (issue 25): one line naming the missing data, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO


def _bench(module: str, data) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module],
        capture_output=True,
        text=True,
        env={**os.environ, "ASSISTANT_BENCH_DATA": str(data)},
        cwd=REPO,
        timeout=120,
    )


def test_retrieval_benchmark_without_its_data_folder_says_so_in_one_line(tmp_path):
    missing = tmp_path / "no-such-data"
    result = _bench("benchmarks.retrieval", missing)
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith("benchmark data not found: ")
    assert str(missing / "scifact" / "queries_test.jsonl") in line
    assert f"(no folder {missing})" in line and "ASSISTANT_BENCH_DATA" in line


def test_a_benchmark_missing_one_data_set_names_its_file(tmp_path):
    result = _bench("benchmarks.extract", tmp_path)  # the folder is there, scifact/ is not
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == (
        f"benchmark data not found: {tmp_path / 'scifact' / 'corpus.jsonl'}; the benchmarks "
        "read the public data sets (scifact/, squad/, squad2/; see BENCHMARKS.md) from "
        "../shared/data, or from the folder ASSISTANT_BENCH_DATA names"
    )


def test_a_missing_file_outside_the_data_is_still_an_error(tmp_path):
    from benchmarks.common import read_jsonl

    with pytest.raises(FileNotFoundError):
        read_jsonl(tmp_path / "nothing.jsonl")
