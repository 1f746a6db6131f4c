"""A DiscoverRunner that also writes its result as JSON, for run.sh to compare.

Set as TEST_RUNNER by djsuite_common; runtests.py builds the runner from
settings. The file named by $DJSUITE_RESULT_JSON gets the ids of failing,
erroring and unexpectedly passing tests with their tracebacks, the ids of
all tests in the suite, and the counts.
"""

from __future__ import annotations

import json
import os

from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases


def _test_id(test) -> str:
    # Test methods, subtests ("id (params)") and _ErrorHolder
    # ("setUpClass (module.Class)") all have id().
    try:
        return test.id()
    except Exception:
        return str(test)


class RecordingRunner(DiscoverRunner):
    def run_suite(self, suite, **kwargs):
        test_ids = sorted({_test_id(t) for t in iter_test_cases(suite)})
        result = super().run_suite(suite, **kwargs)
        path = os.environ.get("DJSUITE_RESULT_JSON")
        if path:
            data = {
                "tests_run": result.testsRun,
                "test_ids": test_ids,
                "failures": {_test_id(t): tb for t, tb in result.failures},
                "errors": {_test_id(t): tb for t, tb in result.errors},
                "unexpected_successes": [_test_id(t) for t in result.unexpectedSuccesses],
                "skipped": len(result.skipped),
                "expected_failures": len(result.expectedFailures),
                "was_successful": result.wasSuccessful(),
            }
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        return result
