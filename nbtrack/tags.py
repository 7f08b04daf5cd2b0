"""MLflow tag names nbtrack writes: the storage contract the query layer reads."""

RUN_KEY = "nbtrack.run_key"  # nbtrack's own run key (journal), unique per run
JOURNAL_SEQ = "nbtrack.journal_seq"  # "<session>:<seq>" last journal event delivered into the run
NOTEBOOK = "nbtrack.notebook"  # notebook path relative to the project
SESSION = "nbtrack.session"  # kernel session id
GIT_COMMIT = "nbtrack.git_commit"  # full SHA
GIT_BRANCH = "nbtrack.git_branch"
GIT_DIRTY = "nbtrack.git_dirty"  # "true" / "false"
CELLS = "nbtrack.cells"  # number of cell executions
OUT_OF_ORDER = "nbtrack.out_of_order"  # cells executed out of top-to-bottom order
ORIGIN = "nbtrack.origin"  # interactive | papermill | nbconvert | sweep | rerun | retrain
SWEEP_ID = "nbtrack.sweep_id"
RERUN_OF = "nbtrack.rerun_of"
RETRAIN_OF = "nbtrack.retrain_of"  # a retrain (nbtrack retrain): the champion run it challenges
# JSON list of the inputs whose newer Delta version started a retrain:
# [{"table": <table uri>, "label": <as a user names it: data/train>, "champion": <version the
#   champion read>, "current": <version the retrain read>}, ...]
RETRAIN_TRIGGER = "nbtrack.retrain.trigger"
PAPERMILL_INPUT = "nbtrack.papermill.input_path"
PAPERMILL_OUTPUT = "nbtrack.papermill.output_path"
# JSON list of the MLflow runs the notebook's own MLflow calls started or ended during this run:
# [{"run_id", "experiment_id", "name", "tracking_uri", "parent_run_id", "ended"}, ...]
USER_RUNS = "nbtrack.user_runs"
PYTHON = "nbtrack.python"  # the kernel's Python version
SYSTEM_METRICS = "system/"  # prefix of the metrics a run cost the machine (MLflow's own convention)
# The kernel's resident-memory high-water mark (MB), a point whenever a cell sets a new one.
PEAK_MEMORY = "system/kernel_peak_memory_mb"
LOOP_SAMPLING = "nbtrack.loop_sampling"  # which loop metrics were sampled, and at what rate
# JSON list of the models captured into the run: [{"name", "flavor", "size"}, ...] (size in bytes,
# pickled); each is the MLflow model runs:/<run id>/<name>
MODELS = "nbtrack.models"
# Sweeps (nbtrack.batch): the parent run and one child per execution.
SWEEP_ROLE = "nbtrack.sweep.role"  # parent | child
SWEEP_INDEX = "nbtrack.sweep.index"  # 1-based combination number: <index>.ipynb
SWEEP_PARAMS = "nbtrack.sweep.params"  # JSON of the injected parameters
SWEEP_SIZE = "nbtrack.sweep.size"
SWEEP_BACKEND = "nbtrack.sweep.backend"  # local | spark
SWEEP_FINISHED = "nbtrack.sweep.finished"  # on the parent: executions that finished
SWEEP_FAILED = "nbtrack.sweep.failed"  # on the parent: executions that failed
SWEEP_DURATION = "nbtrack.sweep.duration_s"  # seconds papermill took, queueing excluded
SWEEP_ERROR = "nbtrack.sweep.error"  # how papermill saw a failed execution end
SWEEP_SUPERSEDED_BY = "nbtrack.sweep.superseded_by"  # a failed child re-run by --resume
PARENT_RUN_ID = "mlflow.parentRunId"  # MLflow's own
RUN_NAME = "mlflow.runName"  # MLflow's own
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
