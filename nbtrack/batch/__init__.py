"""Batch executions: ``nbtrack sweep`` and ``nbtrack rerun`` execute notebooks through papermill.

The pieces, in the order data flows through them::

    params.py    -p / json: / yaml parsing, checks against the parameters cell
    grid.py      parameter space -> list of combinations (grid or random sample)
    plan.py      a sweep's plan (combinations, paths), persisted for --resume
    store.py     MLflow: parent and child runs, their statuses and metrics
    jobs.py      one execution (Job) and its result (Outcome), as JSON
    worker.py    a process that runs jobs with papermill, one kernel at a time
    executor.py  W worker processes at once (local backend)
    spark.py     each execution as a Spark task (spark backend)
    progress.py  the live progress bar
    report.py    the final table and rerun's reproducibility report
    sweep.py     ``nbtrack.sweep()``
    rerun.py     ``nbtrack.rerun()``
"""
