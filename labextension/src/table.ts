/**
 * The run list's logic, apart from the DOM: which columns to show, how to sort (missing
 * values last, whatever the direction), and how runs group under their sweep.
 */
import { toNumber } from './format';
import { IRunRow } from './tokens';

export interface ISortKey {
  /** "start", "name", "status", "duration", "origin", "params.x" or "metrics.y" */
  column: string;
  descending: boolean;
}

/** Columns every list can show besides params and metrics. */
export const FIELD_COLUMNS = ['start', 'duration', 'status', 'origin'];

/** Whether a column holds numbers (sorted and aligned as such). */
export function isNumericColumn(column: string): boolean {
  return column === 'duration' || column === 'start' || column.startsWith('metrics.');
}

/** A run's value in a column, for sorting: a number, a text, or null when it has none. */
export function columnValue(run: IRunRow, column: string): number | string | null {
  switch (column) {
    case 'start':
      return run.start_time ? Date.parse(run.start_time) : null;
    case 'duration':
      return run.duration_s ?? null;
    case 'name':
      return (run.label || run.run_name || run.run_id).toLowerCase();
    case 'status':
      return run.status.toLowerCase();
    case 'origin':
      return run.origin || null;
    case 'number':
      return run.number ?? null;
  }
  if (column.startsWith('metrics.')) {
    const value = toNumber(run.metrics[column.slice(8)]);
    return isNaN(value) ? null : value;
  }
  if (column.startsWith('params.')) {
    const raw = run.params[column.slice(7)];
    if (raw === undefined || raw === '') {
      return null;
    }
    const value = Number(raw);
    return isNaN(value) ? raw : value;
  }
  return null;
}

/** Runs sorted by one column; runs without a value always come last. Stable. */
export function sortRuns(runs: IRunRow[], sort: ISortKey): IRunRow[] {
  const sign = sort.descending ? -1 : 1;
  const keyed = runs.map((run, i) => ({ run, i, key: columnValue(run, sort.column) }));
  keyed.sort((a, b) => {
    if (a.key === null || b.key === null) {
      return a.key === b.key ? a.i - b.i : a.key === null ? 1 : -1;
    }
    let order: number;
    if (typeof a.key === 'number' && typeof b.key === 'number') {
      order = a.key - b.key;
    } else if (typeof a.key === 'number') {
      order = -1; // numbers before text in a mixed param column
    } else if (typeof b.key === 'number') {
      order = 1;
    } else {
      order = a.key.localeCompare(b.key);
    }
    return order === 0 ? a.i - b.i : sign * order;
  });
  return keyed.map(k => k.run);
}

/** The direction a fresh click on a column sorts: newest, longest and metrics first…
 * except a metric where lower is better, which sorts best (lowest) first. */
export function defaultDescending(column: string): boolean {
  if (column.startsWith('metrics.')) {
    return !lowerIsBetter(column.slice(8));
  }
  return column === 'start' || column === 'duration';
}

const LOWER_WORDS = new Set([
  'loss', 'losses', 'logloss', 'nll', 'error', 'errors', 'err',
  'mae', 'mse', 'rmse', 'msle', 'rmsle', 'mape', 'smape',
  'wer', 'cer', 'perplexity', 'ppl', 'brier', 'deviance'
]);
const NEGATED = new Set(['neg', 'negative']);

/** nbtrack's one metric-direction rule (nbtrack/metric_direction.py), for sorting the list. */
export function lowerIsBetter(metric: string): boolean {
  const words = metric
    .replace(/([a-z0-9])(?=[A-Z])/g, '$1_')
    .toLowerCase()
    .split(/[^0-9a-z]+/)
    .filter(Boolean);
  return words.some(w => LOWER_WORDS.has(w)) && !words.some(w => NEGATED.has(w));
}

/** Up to `limit` params worth a column: those whose value varies between runs first. */
export function keyParams(runs: IRunRow[], limit = 3): string[] {
  const values = new Map<string, Set<string>>();
  for (const run of runs) {
    for (const [key, value] of Object.entries(run.params)) {
      if (!values.has(key)) {
        values.set(key, new Set());
      }
      values.get(key)!.add(value);
    }
  }
  return [...values.entries()]
    .sort((a, b) => Number(b[1].size > 1) - Number(a[1].size > 1) || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([key]) => key);
}

/** What the delivery process measured of the kernel (`system/kernel_memory_mb`): a
 * measure, not a result. It never wins a "best", and comes after the notebook's own metrics. */
export const SYSTEM_PREFIX = 'system/';

export function isSystemMetric(metric: string): boolean {
  return metric.startsWith(SYSTEM_PREFIX);
}

/** Metrics by how many runs logged them, then by name; the notebook's own before system ones. */
export function keyMetrics(runs: IRunRow[], limit = 3): string[] {
  const counts = new Map<string, number>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics)) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => Number(isSystemMetric(a[0])) - Number(isSystemMetric(b[0])) || b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([key]) => key);
}

/** The metric a row shows next to the name: the user's choice while runs have it, else the
 * most logged of the notebook's own (a validation or test score before a training one, when
 * equally common); a system measure only when the runs logged nothing else. */
export function chooseMetric(runs: IRunRow[], wanted: string | null): string | null {
  const metrics = keyMetrics(runs, 1000);
  if (wanted && metrics.includes(wanted)) {
    return wanted;
  }
  const own = metrics.filter(m => !isSystemMetric(m));
  const candidates = own.length ? own : metrics;
  const counts = new Map<string, number>();
  runs.forEach(r => Object.keys(r.metrics).forEach(k => counts.set(k, (counts.get(k) ?? 0) + 1)));
  const top = Math.max(0, ...candidates.map(m => counts.get(m) ?? 0));
  const common = candidates.filter(m => counts.get(m) === top);
  return common.find(m => /(^|_)(val|valid|test)(_|$)/.test(m)) ?? common[0] ?? null;
}

/** Every column the list can show for these runs. */
export function availableColumns(runs: IRunRow[]): string[] {
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const run of runs) {
    Object.keys(run.params).forEach(k => params.add(k));
    Object.keys(run.metrics).forEach(k => metrics.add(k));
  }
  return [
    ...FIELD_COLUMNS,
    ...[...params].sort().map(k => `params.${k}`),
    ...[...metrics].sort((a, b) => Number(isSystemMetric(a)) - Number(isSystemMetric(b)) || a.localeCompare(b)).map(k => `metrics.${k}`)
  ];
}

/** The extra columns shown before the user picks: start, duration, varying params, other metrics. */
export function defaultColumns(runs: IRunRow[], metric: string | null): string[] {
  return [
    'start',
    'duration',
    ...keyParams(runs).map(k => `params.${k}`),
    ...keyMetrics(runs, 3)
      .filter(k => k !== metric && !isSystemMetric(k))
      .slice(0, 2)
      .map(k => `metrics.${k}`)
  ];
}

/** The columns to show: the user's pick (those still available), else the defaults. */
export function shownColumns(runs: IRunRow[], metric: string | null, picked: string[] | null): string[] {
  if (picked === null) {
    return defaultColumns(runs, metric);
  }
  const available = new Set(availableColumns(runs));
  return picked.filter(c => available.has(c) && c !== `metrics.${metric}`);
}

/** A sweep as the list shows it: a header over its executions. */
export interface ISweepGroup {
  id: string;
  /** The sweep's parent run (params as lists, counts), when listed. */
  parent: IRunRow | null;
  /** All its executions among the listed runs. */
  runs: IRunRow[];
}

/** One line of the list: a run, or a sweep's header followed (unless collapsed) by its runs. */
export type ListItem =
  | { kind: 'run'; run: IRunRow; inSweep: string | null }
  | { kind: 'sweep'; group: ISweepGroup; shown: IRunRow[]; collapsed: boolean };

/** Is this row a sweep's parent run (it executes nothing: it becomes the group header)? */
export function isSweepParent(run: IRunRow): boolean {
  return Boolean(run.sweep_id) && !run.parent_run_id;
}

/**
 * The list's lines for `shown` (already filtered and sorted) out of `all` runs: a sweep's
 * executions are gathered under one header placed where its first shown execution sorts.
 */
export function listItems(all: IRunRow[], shown: IRunRow[], collapsed: Set<string>): ListItem[] {
  const groups = new Map<string, ISweepGroup>();
  for (const run of all) {
    if (!run.sweep_id) {
      continue;
    }
    const group = groups.get(run.sweep_id) ?? { id: run.sweep_id, parent: null, runs: [] };
    if (isSweepParent(run)) {
      group.parent = run;
    } else {
      group.runs.push(run);
    }
    groups.set(run.sweep_id, group);
  }
  const items: ListItem[] = [];
  const placed = new Set<string>();
  for (const run of shown) {
    if (isSweepParent(run)) {
      continue;
    }
    const sweep = run.sweep_id;
    if (!sweep) {
      items.push({ kind: 'run', run, inSweep: null });
      continue;
    }
    if (placed.has(sweep)) {
      continue;
    }
    placed.add(sweep);
    const members = shown.filter(r => r.sweep_id === sweep && !isSweepParent(r));
    const isCollapsed = collapsed.has(sweep);
    items.push({ kind: 'sweep', group: groups.get(sweep)!, shown: members, collapsed: isCollapsed });
    if (!isCollapsed) {
      members.forEach(member => items.push({ kind: 'run', run: member, inSweep: sweep }));
    }
  }
  return items;
}

/** The best value of a metric among runs (by the direction rule), or null. A failed run's
 * last value is no result: the best comes from the runs that did not fail. */
export function bestValue(runs: IRunRow[], metric: string): number | null {
  const values = runs
    .filter(r => r.status !== 'FAILED' && r.status !== 'KILLED')
    .map(r => toNumber(r.metrics[metric]))
    .filter(v => isFinite(v));
  if (!values.length) {
    return null;
  }
  return lowerIsBetter(metric) ? Math.min(...values) : Math.max(...values);
}
