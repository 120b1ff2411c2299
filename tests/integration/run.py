#!/usr/bin/env python3
"""Runs every tests/integration/test_*.py module's test_* functions against the
real daemon binary ($TRIAGED_BIN) and ends with 'integration: N passed, N failed'.

usage: run.py [-k SUBSTRING]
"""
import importlib.util
import glob
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import SkipTest  # noqa: E402


def main():
    pattern = None
    if len(sys.argv) == 3 and sys.argv[1] == "-k":
        pattern = sys.argv[2]
    passed = failed = skipped = 0
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        # Registered so that one test module can import another's fixtures (one cluster).
        sys.modules[name] = module
        spec.loader.exec_module(module)
        for attr in sorted(dir(module)):
            if not attr.startswith("test_") or (pattern and pattern not in attr):
                continue
            started = time.time()
            try:
                getattr(module, attr)()
            except SkipTest as e:
                skipped += 1
                print("skip %s.%s: %s" % (name, attr, e), flush=True)
                continue
            except Exception:
                failed += 1
                print("FAIL %s.%s (%.1fs)" % (name, attr, time.time() - started), flush=True)
                traceback.print_exc()
                continue
            passed += 1
            print("ok   %s.%s (%.1fs)" % (name, attr, time.time() - started), flush=True)
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
