"""Run the hostile-input corpus (tests/test_hostile_inputs.py) against whichever bayesgain is first on
sys.path and write one JSON line per input: exit status or exception, the message, files changed.

    PYTHONPATH=OLD_CODE python benchmarks/hostile_inputs.py before.json   # e.g. a `git archive` of main
    PYTHONPATH=.        python benchmarks/hostile_inputs.py after.json
    python benchmarks/hostile_inputs.py --table before.json after.json > table.md

Sampling is never started: GainModel.fit is replaced by a stub that records "would sample".
"""

import contextlib
import io
import json
import pathlib
import re
import shutil
import sys
import tempfile
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _message(out, err):
    lines = [ln.strip() for ln in (err + "\n" + out).splitlines() if ln.strip()]
    problems = [ln for ln in lines if re.match(r"^1\. ", ln)]
    if problems:
        return problems[0][3:]
    keep = [ln for ln in lines if not ln.startswith(("usage:", "[", "Experiment folder", "Found:", "  "))]
    for ln in keep:
        if "error" in ln.lower() or ln.startswith("bayesgain") or "Result" in ln:
            return ln
    return keep[-1] if keep else ""


def run_corpus(path_out):
    sys.path.append(str(ROOT))  # the tests come from this checkout, bayesgain from PYTHONPATH
    import bayesgain
    import bayesgain.model.core as core
    from bayesgain.cli import main
    from tests import test_hostile_inputs as T

    def no_sampling(self, *a, **k):
        raise RuntimeError("WOULD-SAMPLE: the input was accepted and sampling would start")

    core.GainModel.fit = no_sampling
    rows = []
    for case_id, setup, rc_expected, words, absent in T.CASES:
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="hostile-"))
        try:
            shutil.copytree(T.TINY, tmp / "exp")
            argv = [str(a) for a in setup(tmp)]
            before = T.snapshot(tmp)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    result = main(argv)
                except SystemExit as exc:
                    result = exc.code
                except BaseException as exc:  # noqa: BLE001 - recording what happened is the point
                    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                    result = f"traceback {tb}"
            after = T.snapshot(tmp)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            msg = _message(out.getvalue(), err.getvalue()) if not str(result).startswith("traceback") else result
            rows.append({"id": case_id, "argv": argv[0], "rc": result if isinstance(result, int) else None,
                         "message": msg.replace(str(tmp), "TMP")[:240], "changed": changed,
                         "bayesgain": bayesgain.__file__})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    pathlib.Path(path_out).write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def _cell(r):
    rc = "exception" if r["rc"] is None else f"exit {r['rc']}"
    msg = "".join(c if c.isprintable() else "?" for c in r["message"]).replace("|", "/")
    msg = msg if len(msg) <= 150 else msg[:147] + "..."
    files = f"; files changed: {', '.join(r['changed'][:3])}" if r["changed"] else ""
    return f"{rc}: {msg}{files}"


def table(before_path, after_path):
    load = lambda p: {r["id"]: r for r in map(json.loads, pathlib.Path(p).read_text().splitlines())}  # noqa: E731
    before, after = load(before_path), load(after_path)
    print("| # | input | command | before | after |")
    print("|---|---|---|---|---|")
    for k, (cid, a) in enumerate(after.items(), start=1):
        b = before.get(cid)
        print(f"| {k} | {cid} | {a['argv']} | {_cell(b) if b else '-'} | {_cell(a)} |")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2], sys.argv[3])
    else:
        run_corpus(sys.argv[1])
