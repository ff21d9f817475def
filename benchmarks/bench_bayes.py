"""Wall time and peak memory of ``manylift bayes`` on Hillstrom, against the code before the
counts collapse, measured in the same run.

Usage::

    python benchmarks/bench_bayes.py --out benchmarks/results/bayes.json
    python benchmarks/bench_bayes.py --skip-baseline          # only the current code

Two commands, each run end to end as a subprocess (start-up, data, both models, checks,
report, files), first with the current checkout, then with the baseline commit (default: the
commit the single-experiment rework started from: a row-level fit, 1,000 + 1,000 draws per
chain, target_accept 0.95), whose ``src/`` is extracted with ``git archive`` to a temporary
folder:

* ``categorical``: ``--covariates mens,womens,newbie`` (every covariate 0/1: the fit runs on
  counts of identical rows); target <= 30 s;
* ``docs``: the command of ``docs/bayes.md`` (``--covariates recency,history,mens,womens,
  newbie --cost 0.1 --margin 40``: continuous covariates); target <= 90 s.

Recorded per run: seconds, peak resident memory of the process (``wait4``), the machine's
load averages before and after (the machine may be shared), and, so that speed never trades
away correctness, the pooled uplift and its interval, the per-segment uplifts and the
sampler diagnostics from each run's ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from machine_info import base_machine, git_commit, load_average  # noqa: E402

BASELINE = "8dfe4f6"  # branch point of the single-experiment rework (row-level NUTS fit)
COMMON = ["bayes", "--dataset", "hillstrom", "--treatment", "segment", "--outcome",
          "conversion", "--segment", "history_segment"]
COMMANDS = {
    "categorical": COMMON + ["--covariates", "mens,womens,newbie"],
    "docs": COMMON + ["--covariates", "recency,history,mens,womens,newbie", "--cost", "0.1",
                      "--margin", "40"],
}
TARGETS = {"categorical": 30.0, "docs": 90.0}


def _extract(commit: str, where: Path) -> Path:
    """``src/`` of ``commit`` (``git archive``) under ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    archive = where / "src.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "archive", commit, "src"], cwd=REPO, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where / "src"


def _run(src: Path, argv: list[str], out: Path) -> dict:
    """Run ``manylift ARGV --out OUT`` with ``src`` first on the path; time and peak memory."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from manylift.cli.main import main; sys.exit(main(sys.argv[2:]))")
    env = dict(os.environ, PYTHONPATH=str(src))
    load_before = load_average()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(src), *argv, "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    # wait4 gives the child's own peak RSS; communicate() reaped it, so read it through rusage
    import resource

    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rec = {"seconds": round(seconds, 1), "returncode": proc.returncode,
           "peak_rss_children_max_gib": round(peak_kib / 1024**2, 3),
           "load_before": load_before, "load_after": load_average()}
    if proc.returncode != 0:
        rec["stderr_tail"] = stderr[-2000:]
        return rec
    res = json.loads((out / "results.json").read_text())
    rec["pooled"] = {k: res["pooled"][k] for k in ("uplift_mean", "uplift_lo", "uplift_hi",
                                                     "p_positive")}
    rec["segments_uplift_mean"] = {k: v["uplift_mean"] for k, v in res["segments"].items()}
    rec["diagnostics"] = {k: res["diagnostics"][k] for k in ("rhat_max", "ess_bulk_min",
                                                               "divergences")}
    rec["sampler"] = res.get("sampler")
    rec["cells"] = res.get("data", {}).get("cells")
    return rec


def _peak(src: Path, argv: list[str], out: Path) -> dict:
    """:func:`_run` in a fresh helper process, so RUSAGE_CHILDREN holds this run alone."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import bench_bayes as b; "
            "from pathlib import Path; "
            "print(json.dumps(b._run(Path(sys.argv[2]), json.loads(sys.argv[3]), "
            "Path(sys.argv[4]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(HERE), str(src), json.dumps(argv),
                           str(out)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default=BASELINE, help=f"baseline commit (default {BASELINE})")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--only", choices=sorted(COMMANDS), default=None)
    p.add_argument("--out", type=Path, default=None,
                   help="write the result as JSON here (e.g. benchmarks/results/bayes.json)")
    a = p.parse_args(argv)
    names = [a.only] if a.only else list(COMMANDS)
    result = {"benchmark": "bench_bayes", "command": " ".join(["python", *sys.argv]),
              "commit": git_commit(), "baseline_commit": a.baseline,
              "machine": {**base_machine(), "load_average_1_5_15": load_average()},
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        current = REPO / "src"
        baseline = None if a.skip_baseline else _extract(a.baseline, tmp / "baseline")
        for name in names:
            cli = "manylift " + " ".join(COMMANDS[name]) + " --out DIR"
            entry = {"cli": cli, "target_seconds": TARGETS[name]}
            print(f"{name}: current code ...", flush=True)
            entry["current"] = _peak(current, COMMANDS[name], tmp / f"{name}_current")
            print(f"  {entry['current']['seconds']} s", flush=True)
            if baseline is not None:
                print(f"{name}: baseline {a.baseline} ...", flush=True)
                entry["baseline"] = _peak(baseline, COMMANDS[name], tmp / f"{name}_baseline")
                print(f"  {entry['baseline']['seconds']} s", flush=True)
                if entry["baseline"]["returncode"] == 0 and entry["current"]["returncode"] == 0:
                    entry["speedup"] = round(entry["baseline"]["seconds"]
                                             / entry["current"]["seconds"], 2)
            entry["meets_target"] = (entry["current"]["returncode"] == 0
                                     and entry["current"]["seconds"] <= TARGETS[name])
            result["runs"][name] = entry
    result["machine"]["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))
    if a.out:
        sys.path.insert(0, str(REPO / "src"))
        from manylift._core.atomic import write_json

        write_json(a.out, result)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
