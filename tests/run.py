#!/usr/bin/python3
"""Run the test suite and print the closing line `N passed, N failed, N skipped`.

    tests/run.py                 # everything
    tests/run.py test_cli test_mounts.PlanTest    # some modules / classes
    tests/run.py --counts FILE   # also write "passed failed skipped" to FILE
    tests/run.py --slowest N     # also list the N slowest tests (to size a subset)
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


class Result(unittest.TextTestResult):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.passed = 0
        self.started = {}
        self.durations = []

    def startTest(self, test):
        self.started[test.id()] = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.durations.append((time.monotonic() - self.started[test.id()], test.id()))

    def addSuccess(self, test):
        self.passed += 1
        super().addSuccess(test)


def main(argv):
    counts_file, slowest = None, 0
    while argv[:1] in (["--counts"], ["--slowest"]):
        if argv[0] == "--counts":
            counts_file = argv[1]
        else:
            slowest = int(argv[1])
        argv = argv[2:]
    loader = unittest.TestLoader()
    if argv:
        suite = loader.loadTestsFromNames([n if n.startswith("tests.") else "tests." + n
                                           for n in argv])
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=os.path.dirname(HERE))
    runner = unittest.TextTestRunner(resultclass=Result, verbosity=2, stream=sys.stdout)
    t0 = time.monotonic()
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    for seconds, name in sorted(result.durations, reverse=True)[:slowest]:
        print(f"{seconds:7.1f} s  {name}")
    print(f"python {sys.version.split()[0]}: {time.monotonic() - t0:.1f} s")
    if counts_file:
        with open(counts_file, "w") as f:
            f.write(f"{result.passed} {failed} {skipped}\n")
    print(f"{result.passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
