"""`models prepare`'s recipe for the student: assembled from the pinned base weights and
the trained delta committed in `export/student/` (`export/student_delta.py`), no training.

Torch-free to import (the command line lists the recipes); building needs the export tools.
"""

import json
from pathlib import Path

from glasses.export.weights import WeightPackage
from glasses.models.student import STORE_NAME

COMMITTED = Path(__file__).with_name("student")  # the delta `models prepare` assembles
RECORD_FILE = "delta.json"


def base_packages() -> tuple[WeightPackage, ...]:
    """The pinned weight packages the student is made from."""
    from glasses.export.lm_build import SMOLLM2_135M
    from glasses.export.vision_build import CLASSIFIER

    return (SMOLLM2_135M, CLASSIFIER.weights)


def student_recipe():
    from glasses.export.prepare import Recipe

    try:
        delta_sha256 = json.loads((COMMITTED / RECORD_FILE).read_text()).get("sha256")
    except (OSError, ValueError):
        delta_sha256 = None  # assembling says what is wrong with it

    def build(store, wheels: list[Path], progress, provenance: dict):
        from glasses.export.distill_build import assemble

        return assemble(store, COMMITTED, progress, provenance=provenance)

    return Recipe(STORE_NAME, base_packages(), (STORE_NAME,), build,
                  "the distilled student: the base weights and the trained delta committed in "
                  "export/student/ (glasses distill makes it)",
                  details=(("delta_sha256", delta_sha256),))
