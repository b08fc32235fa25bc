"""Test-wide settings.

Under CI (`CI=true`) every Hypothesis test replays a fixed, derandomized set of
examples, so a red CI always means a regression; local runs draw new examples
each time, which is how fuzzing keeps finding new cases.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
