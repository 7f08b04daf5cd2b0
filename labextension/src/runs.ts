/**
 * The runs table: one row per run (status, start, duration, key params and
 * metrics), sortable by any column, filtered by text, with checkboxes.
 */
import { formatDuration, formatNum, formatStart, h, toNumber } from './dom';
import { IRunRow } from './tokens';

export interface ISortKey {
  column: string; // "start", "name", "status", "duration", "params.x" or "metrics.y"
  descending: boolean;
}

export interface IRunsTableOptions {
  selected: Set<string>;
  highlighted: Set<string>;
  sort: ISortKey;
  filter: string;
  mlflowRunUrl: ((runId: string) => string) | null;
  onToggle(runId: string, on: boolean): void;
  onSort(column: string): void;
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

export function keyMetrics(runs: IRunRow[], limit = 3): string[] {
  const counts = new Map<string, number>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics)) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([key]) => key);
}

function sortValue(run: IRunRow, column: string): number | string {
  if (column === 'start') {
    return run.start_time ? Date.parse(run.start_time) : 0;
  }
  if (column === 'duration') {
    return run.duration_s ?? -1;
  }
  if (column === 'name') {
    return run.run_name.toLowerCase();
  }
  if (column === 'status') {
    return run.status;
  }
  if (column.startsWith('metrics.')) {
    const value = toNumber(run.metrics[column.slice(8)]);
    return isNaN(value) ? -Infinity : value;
  }
  if (column.startsWith('params.')) {
    const raw = run.params[column.slice(7)] ?? '';
    const value = Number(raw);
    return raw !== '' && !isNaN(value) ? value : raw;
  }
  return 0;
}

/** Runs matching every word of `filter` (in name, status, id, or `key=value` of a param). */
export function filterRuns(runs: IRunRow[], filter: string): IRunRow[] {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return runs;
  }
  return runs.filter(run => {
    const text = [
      run.run_name,
      run.status,
      run.run_id,
      ...Object.entries(run.params).map(([k, v]) => `${k}=${v}`)
    ]
      .join(' ')
      .toLowerCase();
    return words.every(word => text.includes(word));
  });
}

export function sortRuns(runs: IRunRow[], sort: ISortKey): IRunRow[] {
  const sign = sort.descending ? -1 : 1;
  const keyed = runs.map(run => ({ run, key: sortValue(run, sort.column) }));
  keyed.sort((a, b) => {
    const x = a.key;
    const y = b.key;
    if (typeof x === 'number' && typeof y === 'number') {
      return sign * (x - y);
    }
    return sign * String(x).localeCompare(String(y));
  });
  return keyed.map(k => k.run);
}

/** Rows painted at once; the rest follow in chunks on the next frames (1,000 runs stay smooth). */
const FIRST_ROWS = 100;
const CHUNK_ROWS = 300;

/** The table element for `runs` (all of them: filtered and sorted here). */
export function renderRunsTable(runs: IRunRow[], options: IRunsTableOptions): HTMLElement {
  const params = keyParams(runs);
  const metrics = keyMetrics(runs);
  const shown = sortRuns(filterRuns(runs, options.filter), options.sort);
  const header = (label: string, column: string, title?: string) => {
    const active = options.sort.column === column;
    const th = h(
      'th',
      {
        class: active ? 'nbtrack-sorted' : undefined,
        title: title ?? `sort by ${label}`,
        'data-column': column
      },
      label,
      active ? (options.sort.descending ? ' ▾' : ' ▴') : ''
    );
    th.addEventListener('click', () => options.onSort(column));
    return th;
  };
  const row = (run: IRunRow): HTMLTableRowElement => {
    const checkbox = h('input', {
      type: 'checkbox',
      class: 'nbtrack-select',
      'aria-label': `select ${run.run_name || run.run_id}`,
      checked: options.selected.has(run.run_id)
    });
    checkbox.addEventListener('change', () => options.onToggle(run.run_id, checkbox.checked));
    const classes = [
      options.selected.has(run.run_id) ? 'nbtrack-selected' : '',
      options.highlighted.has(run.run_id) ? 'nbtrack-new' : ''
    ]
      .join(' ')
      .trim();
    const link = options.mlflowRunUrl
      ? h(
          'a',
          {
            href: options.mlflowRunUrl(run.run_id),
            target: '_blank',
            rel: 'noopener noreferrer',
            class: 'nbtrack-mlflow-link',
            title: 'open in MLflow UI'
          },
          '↗'
        )
      : null;
    return h(
        'tr',
        { 'data-run-id': run.run_id, class: classes || undefined },
        h('td', {}, checkbox),
        h(
          'td',
          { class: `nbtrack-status nbtrack-status-${run.status.toLowerCase()}`, title: run.status },
          run.status.toLowerCase()
        ),
        h('td', { class: 'nbtrack-name', title: run.run_id }, run.run_name || run.run_id.slice(0, 8), link),
        h('td', { title: run.start_time ?? '' }, formatStart(run.start_time)),
        h('td', { class: 'nbtrack-num' }, formatDuration(run.duration_s)),
        ...params.map(key => h('td', { 'data-param': key }, run.params[key] ?? '')),
        ...metrics.map(key => h('td', { class: 'nbtrack-num', 'data-metric': key }, formatNum(run.metrics[key])))
    );
  };
  const tbody = h('tbody', {});
  const appendRows = (from: number, to: number): void => {
    const chunk = document.createDocumentFragment();
    shown.slice(from, to).forEach(run => chunk.append(row(run)));
    tbody.append(chunk);
  };
  appendRows(0, FIRST_ROWS);
  const more = (from: number): void => {
    if (from >= shown.length || !tbody.isConnected) {
      return; // done, or this table was replaced by a newer rendering
    }
    appendRows(from, from + CHUNK_ROWS);
    requestAnimationFrame(() => more(from + CHUNK_ROWS));
  };
  requestAnimationFrame(() => requestAnimationFrame(() => more(FIRST_ROWS)));
  const table = h(
    'table',
    { class: 'nbtrack-table nbtrack-runs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, ''),
        header('status', 'status'),
        header('run', 'name'),
        header('start', 'start'),
        header('duration', 'duration'),
        ...params.map(key => header(key, `params.${key}`, `param ${key}`)),
        ...metrics.map(key => header(key, `metrics.${key}`, `metric ${key} (last value)`))
      )
    ),
    tbody
  );
  return h(
    'div',
    {},
    table,
    shown.length < runs.length
      ? h('p', { class: 'nbtrack-muted' }, `${shown.length} of ${runs.length} runs match the filter.`)
      : null
  );
}
