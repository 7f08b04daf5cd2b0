"""Batch executions: ``nbtrack sweep`` and ``nbtrack rerun`` execute notebooks through papermill.

The pieces, in the order data flows through them::

    params.py       -p / json: / yaml parsing, checks against the parameters cell
    grid.py         parameter space -> list of combinations (grid or random sample)
    plan.py         a sweep's plan (combinations, paths), persisted for --resume
    store.py        MLflow: parent and child runs, their statuses and metrics
    parent_run.py   the sweep's parent run, through a journal of its own
    jobs.py         one execution (Job), its result (Outcome), its kernel's environment
    kernels.py      kernels started ahead of their jobs
    worker.py       a process that runs jobs with papermill, one kernel at a time
    executor.py     W worker processes at once (local backend)
    run_creator.py  a local sweep's runs, created while its kernels start
    local.py        a local sweep: executions start at once, runs created meanwhile
    spark.py        each execution as a Spark task (spark backend)
    execution.py    executions whose runs exist first (Spark, re-runs), and final statuses
    orphans.py      what a stopped sweep's run-less kernels left behind, removed
    protocol.py     the progress protocol: worker events and progress events, typed once
    progress.py     the live progress bar, and the progress callback's events
    report.py       the final table and rerun's reproducibility report
    sweep.py        ``nbtrack.sweep()``
    rerun.py        ``nbtrack.rerun()``
"""
