/**
 * The run list as it fits a 250 px sidebar: a compact row (checkbox, status dot, `#n` and
 * name, the chosen metric) whose checkbox and name stay put while extra columns scroll
 * sideways; runs grouped under their sweep; a failed run says why under its name.
 */
import { h, statusDot } from './dom';
import { bareName, formatDateTime, formatDuration, formatNum, formatParam, formatStart } from './format';
import { describeModel, rowModels } from './registration';
import { retrainMark } from './retrain';
import { ISortKey, ListItem, bestValue, isNumericColumn, lowerIsBetter } from './table';
import { IRunRow } from './tokens';

export interface IRunListOptions {
  items: ListItem[];
  metric: string | null;
  columns: string[];
  sort: ISortKey;
  selected: Set<string>;
  highlighted: Set<string>;
  mlflowRunUrl: ((runId: string) => string) | null;
  onToggle(runIds: string[], on: boolean): void;
  onSort(column: string): void;
  onToggleSweep(sweepId: string): void;
  onOpenSweep(sweepId: string): void;
  /** Show one run in the main area (its details, or why it failed). */
  onOpenRun(runId: string): void;
}

/** The sweep view's icon: axes crossed by a line, as parallel coordinates draw them. */
const SWEEP_ICON =
  '<svg width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><path fill="none" stroke="currentColor" stroke-width="1.6" d="M2.5 2v12M8 2v12M13.5 2v12M2.5 11 8 5l5.5 6"/></svg>';

/** Rows painted at once; the rest follow in chunks on the next frames (1,000 runs stay smooth). */
const FIRST_ROWS = 100;
const CHUNK_ROWS = 300;

export function columnTitle(column: string): string {
  if (column.startsWith('params.')) {
    return `param ${bareName(column)}`;
  }
  if (column.startsWith('metrics.')) {
    const name = bareName(column);
    return `metric ${name}, last value (${lowerIsBetter(name) ? 'lower' : 'higher'} is better)`;
  }
  return column;
}

function cell(run: IRunRow, column: string): HTMLTableCellElement {
  if (column === 'start') {
    return h('td', { class: 'nbtrack-num', title: formatDateTime(run.start_time) }, formatStart(run.start_time));
  }
  if (column === 'duration') {
    return h('td', { class: 'nbtrack-num' }, formatDuration(run.duration_s));
  }
  if (column === 'status') {
    return h('td', { class: `nbtrack-status-${run.status.toLowerCase()}` }, run.status.toLowerCase());
  }
  if (column === 'origin') {
    return h('td', {}, run.origin ?? '');
  }
  if (column.startsWith('params.')) {
    const key = column.slice(7);
    const value = run.params[key];
    return h(
      'td',
      { 'data-param': key, title: value && value.length > 24 ? value : undefined },
      formatParam(value, 24)
    );
  }
  const key = column.slice(8);
  return h('td', { class: 'nbtrack-num', 'data-metric': key }, formatNum(run.metrics[key]));
}

function nameCell(run: IRunRow, options: IRunListOptions): HTMLTableCellElement {
  const label = run.label || run.run_name || run.run_id.slice(0, 8);
  const number = run.number !== null && run.number !== undefined ? `#${run.number}` : '';
  const title = [
    `${number} ${label}`.trim(),
    run.run_name && run.run_name !== label ? `MLflow name: ${run.run_name}` : '',
    `run ${run.run_id}`,
    `${run.status.toLowerCase()}${run.duration_s !== null ? `, ${formatDuration(run.duration_s)}` : ''}`,
    run.start_time ? `started ${formatDateTime(run.start_time)}` : ''
  ]
    .filter(Boolean)
    .join('\n');
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
  const error = run.error
    ? h(
        'button',
        {
          type: 'button',
          class: 'nbtrack-row-error',
          title: `${run.error.message}\n${run.error.cell ? `in cell ${run.error.cell.number ?? '?'}` : ''}\nclick for the failing cell and traceback`
        },
        run.error.message
      )
    : null;
  error?.addEventListener('click', () => options.onOpenRun(run.run_id));
  return h(
    'td',
    { class: 'nbtrack-name', title },
    h(
      'div',
      { class: 'nbtrack-name-line' },
      statusDot(run.status),
      number ? h('span', { class: 'nbtrack-number' }, number) : null,
      h('span', { class: 'nbtrack-label' }, label),
      modelBadge(run),
      link
    ),
    retrainLine(run),
    error
  );
}

/** ◆ on a run that logged a model; its models, flavors and sizes on hover. */
function modelBadge(run: IRunRow): HTMLElement | null {
  const models = rowModels(run.models);
  if (!models.length) {
    return null;
  }
  const title = `model${models.length > 1 ? 's' : ''}: ${models.map(describeModel).join(', ')}`;
  return h('span', { class: 'nbtrack-model-badge nbtrack-muted', title, 'aria-label': title }, '◆');
}

/** A retrain run's line under its name: ⟳ and the input version that triggered it; its champion
 * and both versions on hover. Its own line, so the name keeps the narrow sidebar's room. */
function retrainLine(run: IRunRow): HTMLElement | null {
  const mark = retrainMark(run);
  if (!mark) {
    return null;
  }
  return h('div', { class: 'nbtrack-retrain-line', title: mark.title, 'aria-label': mark.title }, mark.text);
}

function runRow(run: IRunRow, options: IRunListOptions, inSweep: string | null): HTMLTableRowElement {
  const checked = options.selected.has(run.run_id);
  const checkbox = h('input', {
    type: 'checkbox',
    class: 'nbtrack-select',
    'aria-label': `select ${run.number ? `#${run.number} ` : ''}${run.label || run.run_name || run.run_id}`,
    checked
  });
  checkbox.addEventListener('change', () => options.onToggle([run.run_id], checkbox.checked));
  const classes = [
    checked ? 'nbtrack-selected' : '',
    options.highlighted.has(run.run_id) ? 'nbtrack-new' : '',
    inSweep ? 'nbtrack-in-sweep' : '',
    run.error ? 'nbtrack-failed' : ''
  ]
    .filter(Boolean)
    .join(' ');
  return h(
    'tr',
    { 'data-run-id': run.run_id, 'data-status': run.status.toLowerCase(), class: classes || undefined },
    h('td', { class: 'nbtrack-check' }, checkbox),
    nameCell(run, options),
    options.metric
      ? h(
          'td',
          { class: 'nbtrack-num nbtrack-metric-cell', 'data-metric': options.metric },
          formatNum(run.metrics[options.metric])
        )
      : null,
    ...options.columns.map(column => cell(run, column))
  );
}

function sweepRow(item: Extract<ListItem, { kind: 'sweep' }>, options: IRunListOptions, span: number): HTMLTableRowElement {
  const { group, shown, collapsed } = item;
  const ids = shown.map(r => r.run_id);
  const checkbox = h('input', {
    type: 'checkbox',
    class: 'nbtrack-select-sweep',
    'aria-label': `select the runs of sweep ${group.id}`,
    checked: ids.length > 0 && ids.every(id => options.selected.has(id))
  });
  checkbox.addEventListener('change', () => options.onToggle(ids, checkbox.checked));
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'nbtrack-sweep-toggle',
      'aria-expanded': collapsed ? 'false' : 'true',
      title: collapsed ? 'show the runs of this sweep' : 'hide the runs of this sweep'
    },
    collapsed ? '▸' : '▾'
  );
  toggle.addEventListener('click', () => options.onToggleSweep(group.id));
  const failed = group.runs.filter(r => r.status === 'FAILED' || r.status === 'KILLED').length;
  const running = group.runs.filter(r => r.status === 'RUNNING').length;
  const best = options.metric ? bestValue(shown, options.metric) : null;
  const counts = [
    shown.length === group.runs.length ? `${group.runs.length} runs` : `${shown.length} of ${group.runs.length} runs`,
    failed ? `${failed} failed` : '',
    running ? `${running} running` : ''
  ]
    .filter(Boolean)
    .join(', ');
  const view = h('button', { type: 'button', class: 'nbtrack-sweep-open', title: 'open the sweep view: params against a metric', 'aria-label': 'open the sweep view' });
  view.innerHTML = SWEEP_ICON; // a constant: no user text goes in as HTML
  view.addEventListener('click', () => options.onOpenSweep(group.id));
  return h(
    'tr',
    { class: 'nbtrack-sweep', 'data-sweep-id': group.id },
    h('td', { class: 'nbtrack-check' }, checkbox),
    h(
      'td',
      { class: 'nbtrack-name', title: `sweep ${group.id}\n${counts}` },
      h(
        'div',
        { class: 'nbtrack-name-line' },
        toggle,
        h('span', { class: 'nbtrack-label' }, `sweep ${formatStart(group.parent?.start_time ?? group.runs[0]?.start_time)}`),
        view
      ),
      h('div', { class: 'nbtrack-sweep-counts' }, counts)
    ),
    options.metric
      ? h('td', { class: 'nbtrack-num nbtrack-metric-cell', title: `best ${options.metric} in the sweep` }, best === null ? '' : formatNum(best))
      : null,
    span > 0 ? h('td', { colspan: String(span) }) : null
  );
}

/** The run list's table. */
export function renderRunList(options: IRunListOptions): HTMLTableElement {
  const header = (label: string, column: string, title: string, className = '') => {
    const active = options.sort.column === column;
    const th = h(
      'th',
      {
        class: [className, active ? 'nbtrack-sorted' : '', isNumericColumn(column) ? 'nbtrack-num' : ''].filter(Boolean).join(' ') || undefined,
        title: `${title} (click to sort)`,
        'data-column': column,
        'aria-sort': active ? (options.sort.descending ? 'descending' : 'ascending') : undefined
      },
      label,
      active ? (options.sort.descending ? ' ▾' : ' ▴') : ''
    );
    th.addEventListener('click', () => options.onSort(column));
    return th;
  };
  const runs = options.items.flatMap(item => (item.kind === 'run' ? [item.run] : item.shown));
  const allBox = h('input', {
    type: 'checkbox',
    class: 'nbtrack-select-all',
    'aria-label': 'select every run shown',
    checked: runs.length > 0 && runs.every(r => options.selected.has(r.run_id))
  });
  allBox.addEventListener('change', () => options.onToggle(runs.map(r => r.run_id), allBox.checked));
  const tbody = h('tbody', {});
  const span = options.columns.length;
  const render = (item: ListItem): HTMLTableRowElement =>
    item.kind === 'run' ? runRow(item.run, options, item.inSweep) : sweepRow(item, options, span);
  const appendRows = (from: number, to: number): void => {
    const chunk = document.createDocumentFragment();
    options.items.slice(from, to).forEach(item => chunk.append(render(item)));
    tbody.append(chunk);
  };
  appendRows(0, FIRST_ROWS);
  const more = (from: number): void => {
    if (from >= options.items.length || !tbody.isConnected) {
      return; // done, or this table was replaced by a newer rendering
    }
    appendRows(from, from + CHUNK_ROWS);
    requestAnimationFrame(() => more(from + CHUNK_ROWS));
  };
  requestAnimationFrame(() => requestAnimationFrame(() => more(FIRST_ROWS)));
  return h(
    'table',
    { class: 'nbtrack-table nbtrack-runs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { class: 'nbtrack-check' }, allBox),
        header('run', 'name', 'run: #number and name', 'nbtrack-name'),
        options.metric ? header(options.metric, `metrics.${options.metric}`, columnTitle(`metrics.${options.metric}`), 'nbtrack-metric-cell') : null,
        ...options.columns.map(column => header(bareName(column), column, columnTitle(column)))
      )
    ),
    tbody
  );
}
