/**
 * Public interfaces of the nbtrack panel and the wire types of its server API
 * (`nbtrack/server/handlers.py`, `nbtrack.query.compare.Comparison.to_dict`).
 */
import { Token } from '@lumino/coreutils';

/** GET /nbtrack/api/version */
export interface IVersionInfo {
  name: string;
  version: string;
  root_dir: string;
  mlflow_ui_url: string | null;
}

/** A number as JSON carries it: NaN and infinities arrive as strings. */
export type Num = number | 'nan' | 'inf' | '-inf';

/** Why a run failed (nbtrack.query.failures). */
export interface IRunError {
  name: string;
  value: string;
  message: string;
  cell: {
    cell_id: string | null;
    index: number | null;
    number: number | null;
    exec_count: number | null;
    source: string;
  } | null;
  /** The run's copy of papermill's output notebook (an artifact path). */
  output: string | null;
  output_path: string | null;
  traceback: string | null;
}

/** One row of GET /nbtrack/api/runs (nbtrack.query.runs.list_runs). */
export interface IRunRow {
  run_id: string;
  run_name: string;
  status: string;
  start_time: string | null;
  end_time: string | null;
  duration_s: number | null;
  origin?: string;
  rerun_of?: string;
  /** A retrain's champion run (nbtrack retrain), and JSON of the inputs whose new version started it. */
  retrain_of?: string;
  retrain_trigger?: string;
  sweep_id?: string;
  parent_run_id?: string;
  git_commit?: string;
  /** #n: runs of the notebook numbered in start order (a sweep's parent has none). */
  number?: number | null;
  /** What sets the run apart: `rerun of #2 · lr=0.5`, a sweep's params… (nbtrack.query.names) */
  label?: string;
  error?: IRunError;
  params: Record<string, string>;
  metrics: Record<string, Num>;
  [column: string]: unknown;
}

/** GET /nbtrack/api/runs?notebook=PATH */
export interface IRunsReply {
  /** Changes whenever the runs may have (GET /nbtrack/api/changes returns the current one). */
  token?: string;
  notebook: {
    path: string;
    absolute_path: string;
    project: string;
    experiment: string;
    experiment_id: string | null;
    tracking_uri: string;
  };
  mlflow_ui_url: string | null;
  /** The most runs listed (the newest ones): a list this long may leave older runs out. */
  limit?: number;
  runs: IRunRow[];
}

export interface ICompareRun {
  run_id: string;
  run_name: string;
  label: string;
  experiment_id: string;
  experiment_name: string;
  status: string;
  start_time: string | null;
  end_time: string | null;
  duration_s: number | null;
  tags: Record<string, string>;
  /** Runs the notebook's own MLflow made during this run (in its own store). */
  user_runs?: IUserRun[];
  error?: IRunError | null;
  /** The run's models (nbtrack.query.models): each is the MLflow model `uri`. */
  models?: IRunModel[];
}

export interface IRunModel {
  name: string;
  flavor: string;
  /** Bytes, pickled. */
  size: number | null;
  uri: string;
}

/** POST /nbtrack/api/register (201: a new version; 200: the model already was that version) */
export interface IRegistration {
  uri: string;
  name: string;
  version: number;
  run_id: string;
  model: string;
  aliases: string[];
  created: boolean;
}

export interface IUserRun {
  run_id: string;
  experiment_id?: string;
  name?: string;
  tracking_uri?: string;
  parent_run_id?: string;
  ended?: boolean;
  /** The run's page in its MLflow UI, when its store is a tracking server. */
  url: string | null;
}

export interface ICompareParam {
  key: string;
  values: Record<string, string | null>;
  differs: boolean;
}

export interface ICompareMetric {
  key: string;
  direction: 'min' | 'max';
  values: Record<string, { last: Num; best: Num; steps: number } | null>;
  best_runs: { last: string[]; best: string[] };
}

export interface IFigureFile {
  path: string;
  ext: string;
  exec_count: number | null;
}

export interface IFigureGroup {
  key: string;
  cell_id: string | null;
  n: number | null;
  /** The cell's position in the notebook (0-based). */
  index?: number | null;
  runs: Record<string, IFigureFile[]>;
}

export interface ICellDiff {
  cell_id: string;
  index: number | null;
  sources: Record<string, string | null>;
  diffs: Record<string, string>;
}

/** GET /nbtrack/api/compare?ids=A,B */
export interface IComparison {
  version: number;
  runs: ICompareRun[];
  params: ICompareParam[];
  metrics: ICompareMetric[];
  histories: Record<string, Record<string, [number, Num][]>>;
  figures: IFigureGroup[];
  cells: ICellDiff[];
  /** Input tables each run read, and how they moved against the first run. */
  inputs?: IInputs;
}

export interface IInputDrift {
  table_uri: string;
  version_a: number | null;
  version_b: number | null;
  schema_changed: boolean;
  only_in: 'a' | 'b' | null;
  summary: string;
  run_a: string;
  run_b: string;
  columns: { column: string; score: number | string; reason: string }[];
}

export interface IInputs {
  differ: boolean;
  drift: IInputDrift[];
  runs: Record<string, { table_uri: string; version: number | null; rows: number | null }[]>;
}

/** GET /nbtrack/api/jobs/ID (and the reply of POST /nbtrack/api/rerun) */
export interface IJob {
  id: string;
  kind: string;
  target: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  progress: { state?: string; cell?: number; cells?: number; [k: string]: unknown };
  result: { runs?: IRunRow[] } | null;
  message: string;
  created: number;
  started: number | null;
  finished: number | null;
}

/** How a run is named on screen: `#3` and what sets it apart. */
export interface IRunName {
  number: number | null;
  label: string;
}

/**
 * An action on one run, offered in the comparison's run headers (re-run is built in;
 * registering a model, `register.ts`, is added with `addRunAction`).
 */
export interface IRunAction {
  id: string;
  label: string;
  caption: string;
  /** Whether the action applies to this run (e.g. only finished runs). */
  isEnabled?(run: ICompareRun): boolean;
  /** Do it; progress and errors are shown in place by the comparison (`report`). `notebook`:
   * the compared notebook's path (relative to the server root), which decides the store. */
  execute(
    run: ICompareRun,
    report: (message: string, kind?: 'info' | 'error' | 'done') => void,
    notebook?: string | null
  ): Promise<void>;
}

/** The side panel, for other extensions that want to point it somewhere. */
export interface INbtrackPanel {
  /** Show the runs of a notebook (path relative to the server root). */
  showNotebook(path: string | null): Promise<void>;
  /** Reload the runs of the notebook shown. */
  refresh(): Promise<void>;
  /** Offer another action on a run in comparisons (after re-run). */
  addRunAction(action: IRunAction): void;
}

export const INbtrackPanel = new Token<INbtrackPanel>(
  'nbtrack:INbtrackPanel',
  'The nbtrack side panel: runs of the active notebook, comparison and re-run.'
);
