"""The run store: the ``Store`` protocol the applications use, and ``RunStore``, its SQLite
implementation: runs, behaviors, attempts, completions, verdicts and a completion
cache, in one schema-versioned file.

    with RunStore("runs.sqlite") as store:
        run_id = store.create_run("scan", config, seed=0, model_ids={"target": spec})
        store.record_attempts(run_id, results)
"""

from sparring.store.base import Store
from sparring.store.records import RunRecord, RunStatus
from sparring.store.schema import SCHEMA_VERSION
from sparring.store.sqlite import RunStore

__all__ = ["SCHEMA_VERSION", "RunRecord", "RunStatus", "RunStore", "Store"]
