"""The OKR definitions: the YAML model, its line-keeping loader and the linter.

Pure: no Dagster, no HTTP. `load_definitions(path)` is the entry point; `model.py` holds
the pydantic models, `loader.py` the loading, `lint.py` the best-practice warnings.
"""

from okr_metrics.pipelines.definitions.loader import Definitions, definition_files, load_definitions
from okr_metrics.pipelines.definitions.model import KeyResult, Objective, OkrFile
from okr_metrics.pipelines.definitions.problems import Problem

__all__ = [
    "Definitions",
    "KeyResult",
    "Objective",
    "OkrFile",
    "Problem",
    "definition_files",
    "load_definitions",
]
