"""The SQLite run store: runs, behaviors, attempts, completions, verdicts and a completion
cache, in one schema-versioned file.

    with RunStore("runs.sqlite") as store:
        run_id = store.create_run("scan", config, seed=0, model_ids={"target": spec})
        store.record_attempts(run_id, results)
"""

from sparring.store.records import RunRecord, RunStatus
from sparring.store.schema import SCHEMA_VERSION
from sparring.store.sqlite import RunStore

__all__ = ["SCHEMA_VERSION", "RunRecord", "RunStatus", "RunStore"]
