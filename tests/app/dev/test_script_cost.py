"""``python -m app.dev.script_cost``: the server's instructions per submit, from callgrind on a
private redis-server. Needs valgrind: without it the test skips, except under CI, where it fails
(``.ci/run`` installs Debian's ``valgrind``)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.app.dev.test_bench import report_of


@pytest.mark.redis
def test_script_cost_counts_the_server_work_of_a_single_submit_a_batch_job_and_a_request() -> None:
    if shutil.which("valgrind") is None:
        message = "script_cost needs valgrind (apt install valgrind)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    args = ["--singles", "100", "--batches", "3", "--batch-size", "50", "--group-size", "10"]
    args.append("--json")
    report = report_of("app.dev.script_cost", *args)
    assert (report["batch_size"], report["group_size"]) == (50, 10)
    # a script call with eleven commands: far more than a bare command's few thousand
    # instructions, and far less than a millisecond of the server's time
    assert 100_000 < report["single_submit"] < 1_000_000
    # a batch shares the call's fixed work among its jobs
    assert 20_000 < report["batch_job"] < report["single_submit"]
    # the requests of a group commit share one read of their tenant's counters (a full minute
    # of seconds), so a request with its limits costs less than a lone submit without them
    assert 20_000 < report["grouped_request"] < report["single_submit"]
