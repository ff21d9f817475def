"""The peak memory a run reports is its own, not that of the process that started it."""

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_a_child_started_by_a_large_process_reports_its_own_peak():
    big = bytearray(1 << 30)  # a parent holding 1 GiB, touched so it is resident
    for i in range(0, len(big), 4096):
        big[i] = 1
    code = ("import resource; from manylift._core.memory import peak_rss_gib; "
            "print(peak_rss_gib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    own, maxrss = (float(x) for x in out.stdout.split())
    del big
    assert own < 0.5, own  # a Python start-up with manylift imported: well under 1 GiB
    # getrusage keeps the parent's size from before exec where fork copied it; the
    # function must not (the reason it reads VmHWM)
    assert own < maxrss or maxrss < 0.5
