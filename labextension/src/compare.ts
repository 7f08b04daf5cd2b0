/**
 * The comparison, in a main-area tab beside the notebook: one column per run (colour,
 * `#n`, full name on hover), then why failed runs failed, params (differences first, or
 * only), metrics (last and best over steps, the best of each marked), curves, figures side
 * by side, changed cells, input drift and provenance. Actions on a run (re-run; registering
 * a model once models exist) run in place, with their progress and errors shown here.
 * It only lays out what the server's comparison says.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { IChartView, MetricChart } from './chart';
import { paramRows, provenance, runHeading } from './comparison';
import { button, h, statusDot, swatch } from './dom';
import { FigureGallery } from './figures';
import { cellName, formatDuration, formatNum, formatParam, runColor } from './format';
import { jobLine, rerunForm } from './forms';
import { ITrackedJob, JobTracker } from './jobs';
import { apiUrl, describeError, requestAPI } from './request';
import { SYSTEM_PREFIX, isSystemMetric } from './table';
import { ICompareRun, IComparison, IRunAction, IRunName } from './tokens';

export interface IComparisonOptions {
  rendermime: IRenderMimeRegistry | null;
  jobs: JobTracker;
  /** Actions besides re-run (registering a model: `register.ts`). */
  actions(): IRunAction[];
  /** The server's root folder (to open papermill's files in JupyterLab). */
  rootDir(): string | null;
  /** `#n` and names of the runs, as the run list has them now. */
  names(): Map<string, IRunName>;
  /** Open a file (relative to the server root) in JupyterLab. */
  openPath(path: string): void;
  /** Show a run's output notebook (rendered by the server) in a tab. */
  openOutput(runId: string, notebook: string | null, title: string): void;
}

const CHART_MIN_WIDTH = 320;

export class ComparisonWidget extends Widget {
  private _options: IComparisonOptions;
  private _cmp: IComparison | null = null;
  private _ids: string[] = [];
  private _notebook: string | null = null;
  private _names = new Map<string, IRunName>();
  private _charts: MetricChart[] = [];
  private _gallery: FigureGallery | null = null;
  private _chartView: IChartView = { log: false, smoothing: 0 };
  private _differencesOnly = false;
  private _resize: ResizeObserver;
  private _chartGrid: HTMLElement | null = null;
  private _actionArea = h('div', { class: 'nbtrack-run-actions-area' });
  private _loadToken = 0;

  constructor(options: IComparisonOptions) {
    super();
    this._options = options;
    this.id = 'nbtrack-comparison';
    this.addClass('nbtrack-main');
    this.title.label = 'nbtrack: compare';
    this.title.closable = true;
    this._resize = new ResizeObserver(() => this._fitCharts());
    this._resize.observe(this.node);
    options.jobs.changed.connect(this._onJob, this);
  }

  get runIds(): string[] {
    return this._ids;
  }

  get notebook(): string | null {
    return this._notebook;
  }

  /** Compare these runs (of `notebook`); the tab shows progress, then the comparison or the error. */
  async load(ids: string[], notebook: string | null): Promise<void> {
    const token = ++this._loadToken;
    this._ids = ids;
    this._notebook = notebook;
    this._names = this._options.names();
    this.title.label = `Compare ${ids.map(id => this._short(id)).join(' ')}`;
    this.title.caption = `nbtrack: comparison of ${ids.length} run${ids.length === 1 ? '' : 's'}${notebook ? ` of ${notebook}` : ''}`;
    this._clear();
    this.node.replaceChildren(h('p', { class: 'nbtrack-muted nbtrack-loading-line' }, `Comparing ${ids.length} run${ids.length === 1 ? '' : 's'}…`));
    performance.mark('nbtrack-compare-request');
    let cmp: IComparison;
    try {
      cmp = await requestAPI<IComparison>(['compare'], { ids: ids.join(','), notebook });
    } catch (error) {
      if (token === this._loadToken) {
        this.node.replaceChildren(h('p', { class: 'nbtrack-error' }, `Cannot compare these runs: ${describeError(error)}`));
      }
      return;
    }
    if (token !== this._loadToken || this.isDisposed) {
      return;
    }
    performance.mark('nbtrack-compare-received');
    this._cmp = cmp;
    this._render();
    requestAnimationFrame(() => setTimeout(() => performance.mark('nbtrack-compare-painted')));
  }

  /** Draw again (the theme changed: charts take their colours from it). */
  redraw(): void {
    if (this._cmp) {
      this._render();
    }
  }

  /** The run list changed (new numbers or names): relabel without asking the server again. */
  updateNames(): void {
    const names = this._options.names();
    const changed = this._ids.some(id => JSON.stringify(names.get(id)) !== JSON.stringify(this._names.get(id)));
    if (changed && this._cmp) {
      this._names = names;
      this._render();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._resize.disconnect();
    this._clear();
    this._options.jobs.changed.disconnect(this._onJob, this);
    super.dispose();
  }

  private _short(runId: string): string {
    const name = this._names.get(runId);
    return name && name.number !== null ? `#${name.number}` : runId.slice(0, 8);
  }

  private _clear(): void {
    this._charts.forEach(c => c.dispose());
    this._charts = [];
    this._gallery?.dispose();
    this._gallery = null;
    this._chartGrid = null;
  }

  private _render(): void {
    const cmp = this._cmp!;
    this._clear();
    const failed = cmp.runs.filter(r => r.error);
    const sections: (HTMLElement | null)[] = [
      this._header(cmp),
      section('Runs', 'runs', this._runsTable(cmp), this._actionArea),
      failed.length ? section(failed.length === 1 ? 'Why it failed' : 'Why they failed', 'failures', ...failed.map(run => this._failure(cmp, run))) : null,
      this._paramsSection(cmp),
      section('Metrics', 'metrics', this._metricsTable(cmp)),
      this._systemSection(cmp),
      this._curvesSection(cmp),
      this._figuresSection(cmp),
      section('Changed cells', 'cells', this._cells(cmp)),
      section('Inputs', 'inputs', this._inputs(cmp)),
      section('Provenance', 'provenance', this._provenance(cmp))
    ];
    this.node.replaceChildren(h('div', { class: 'nbtrack-compare' }, ...sections));
    this._renderJobs();
    requestAnimationFrame(() => this._fitCharts());
  }

  private _header(cmp: IComparison): HTMLElement {
    const reload = button('⟳', () => void this.load(this._ids, this._notebook), { class: 'jp-mod-styled nbtrack-reload', title: 'compare again (new points, new figures)' });
    return h(
      'header',
      { class: 'nbtrack-compare-header' },
      h('h2', {}, `${cmp.runs.length === 1 ? 'Run' : `${cmp.runs.length} runs`}${this._notebook ? ` of ${this._notebook}` : ''}`),
      reload
    );
  }

  /** The first row of every table: one column per run. */
  private _runHeads(cmp: IComparison, first: string): HTMLTableRowElement {
    return h(
      'tr',
      {},
      h('th', { class: 'nbtrack-key' }, first),
      ...cmp.runs.map((run, i) => {
        const heading = runHeading(run, this._names);
        return h('th', { class: 'nbtrack-run-head', title: heading.full, 'data-run-id': run.run_id }, swatch(runColor(i)), statusDot(run.status), heading.short);
      })
    );
  }

  private _table(cmp: IComparison, first: string, className: string, rows: HTMLTableRowElement[]): HTMLElement {
    return h(
      'div',
      { class: 'nbtrack-scroll' },
      h('table', { class: `nbtrack-table nbtrack-grid ${className}`, style: `--nbtrack-columns:${cmp.runs.length}` }, h('thead', {}, this._runHeads(cmp, first)), h('tbody', {}, ...rows))
    );
  }

  private _runsTable(cmp: IComparison): HTMLElement {
    const label = (run: ICompareRun) => this._names.get(run.run_id)?.label || run.run_name;
    const rows = [
      h('tr', { 'data-row': 'name' }, h('td', { class: 'nbtrack-key' }, 'name'), ...cmp.runs.map(run => h('td', { class: 'nbtrack-run-label', title: run.run_id }, label(run)))),
      h(
        'tr',
        { 'data-row': 'status' },
        h('td', { class: 'nbtrack-key' }, 'status'),
        ...cmp.runs.map(run =>
          h('td', { class: `nbtrack-status-${run.status.toLowerCase()}` }, run.status.toLowerCase(), run.error ? h('div', { class: 'nbtrack-row-error' }, run.error.message) : null)
        )
      ),
      h('tr', { 'data-row': 'duration' }, h('td', { class: 'nbtrack-key' }, 'duration'), ...cmp.runs.map(run => h('td', { class: 'nbtrack-num' }, formatDuration(run.duration_s)))),
      h('tr', { 'data-row': 'actions' }, h('td', { class: 'nbtrack-key' }, 'actions'), ...cmp.runs.map(run => h('td', { class: 'nbtrack-run-actions' }, ...this._actionButtons(run))))
    ];
    return this._table(cmp, 'run', 'nbtrack-runs-grid', rows);
  }

  // -- actions on a run ---------------------------------------------------------------

  private _actionButtons(run: ICompareRun): HTMLElement[] {
    const rerun = button('Re-run…', () => this._rerunForm(run), {
      class: 'jp-mod-styled nbtrack-action nbtrack-action-rerun',
      title: 'run this run\'s notebook again, with params edited'
    });
    const extra = this._options.actions().map(action => {
      const enabled = action.isEnabled ? action.isEnabled(run) : true;
      const node = button(action.label, () => void this._runAction(action, run), {
        class: `jp-mod-styled nbtrack-action nbtrack-action-${action.id}`,
        title: action.caption,
        disabled: !enabled
      });
      return node;
    });
    return [rerun, ...extra];
  }

  private async _runAction(action: IRunAction, run: ICompareRun): Promise<void> {
    const status = h('p', { class: 'nbtrack-job-status' }, `${action.label} ${this._short(run.run_id)}…`);
    this._actionArea.append(status);
    const report = (message: string, kind: 'info' | 'error' | 'done' = 'info') => {
      status.textContent = `${action.label} ${this._short(run.run_id)}: ${message}`;
      status.className = `nbtrack-job-status nbtrack-${kind}`;
    };
    try {
      await action.execute(run, report, this._notebook);
    } catch (error) {
      report(describeError(error), 'error');
    }
  }

  private _rerunForm(run: ICompareRun): void {
    const cmp = this._cmp!;
    const params: Record<string, string> = {};
    cmp.params.forEach(p => {
      const value = p.values[run.run_id];
      if (value !== null && value !== undefined) {
        params[p.key] = value;
      }
    });
    const form = rerunForm(`Re-run ${this._short(run.run_id)}`, params, changed => {
      form.remove();
      void this._options.jobs.rerun(run.run_id, changed, this._notebook);
    }, () => form.remove());
    this._actionArea.querySelector('.nbtrack-rerun-form')?.remove();
    this._actionArea.prepend(form);
    form.querySelector('input')?.focus();
  }

  private _onJob(_: JobTracker, tracked: ITrackedJob): void {
    if (tracked.notebook === this._notebook && this._ids.includes(tracked.runId)) {
      this._renderJobs();
    }
  }

  private _renderJobs(): void {
    const jobs = this._options.jobs.forNotebook(this._notebook).filter(j => this._ids.includes(j.runId));
    this._actionArea.querySelectorAll('.nbtrack-job').forEach(n => n.remove());
    for (const tracked of jobs) {
      const done = tracked.job?.state === 'done' && tracked.newRunIds.length > 0;
      const add = done
        ? button('add to this comparison', () => void this.load([...this._ids, ...tracked.newRunIds.filter(id => !this._ids.includes(id))], this._notebook), {
            class: 'jp-mod-styled nbtrack-add-new'
          })
        : null;
      const failed = Boolean(tracked.error) || tracked.job?.state === 'failed';
      this._actionArea.append(
        jobLine(`Re-run of ${this._short(tracked.runId)}`, tracked, failed, add)
      );
    }
  }

  // -- sections -----------------------------------------------------------------------

  private _failure(cmp: IComparison, run: ICompareRun): HTMLElement {
    const error = run.error!;
    const heading = runHeading(run, this._names);
    const where = error.cell ? ` in ${cellName(error.cell.index, error.cell.cell_id)}${error.cell.exec_count !== null ? ` (execution [${error.cell.exec_count}])` : ''}` : '';
    const links: HTMLElement[] = [];
    if (error.output) {
      const open = h('a', { href: '#', class: 'nbtrack-output-link' }, 'output notebook');
      open.addEventListener('click', event => {
        event.preventDefault();
        this._options.openOutput(run.run_id, this._notebook, `output of ${heading.short}`);
      });
      links.push(open);
      links.push(h('a', { href: apiUrl(['artifact', run.run_id, error.output], { notebook: this._notebook }), download: error.output.split('/').pop(), class: 'nbtrack-download' }, 'download .ipynb'));
    }
    return h(
      'div',
      { class: 'nbtrack-failure', 'data-run-id': run.run_id },
      h('p', { class: 'nbtrack-failure-title' }, swatch(runColor(cmp.runs.indexOf(run))), h('strong', {}, heading.short), ` ${run.status.toLowerCase()}${where}: `, h('code', { class: 'nbtrack-error-name' }, error.name), ` ${error.value}`),
      error.cell?.source ? h('pre', { class: 'nbtrack-source', title: 'the failing cell' }, error.cell.source) : null,
      error.traceback ? h('details', { class: 'nbtrack-traceback' }, h('summary', {}, 'traceback'), h('pre', {}, error.traceback)) : null,
      links.length ? h('p', { class: 'nbtrack-links' }, ...links.flatMap((l, i) => (i ? [' · ', l] : [l]))) : null,
      !error.output && error.output_path ? h('p', { class: 'nbtrack-muted' }, `papermill wrote its output to ${error.output_path}`) : null
    );
  }

  private _paramsSection(cmp: IComparison): HTMLElement {
    if (cmp.params.length === 0) {
      return section('Params', 'params', h('p', { class: 'nbtrack-muted' }, 'No params logged.'));
    }
    const differing = cmp.params.filter(p => p.differs).length;
    const toggle = h('input', { type: 'checkbox', class: 'nbtrack-diff-only', checked: this._differencesOnly });
    toggle.addEventListener('change', () => {
      this._differencesOnly = toggle.checked;
      body.replaceChildren(this._paramsTable(cmp));
    });
    const body = h('div', {}, this._paramsTable(cmp));
    return section(
      'Params',
      'params',
      h(
        'div',
        { class: 'nbtrack-section-tools' },
        h('label', {}, toggle, ' show differences only'),
        h('span', { class: 'nbtrack-muted' }, `${differing} of ${cmp.params.length} differ`)
      ),
      body
    );
  }

  private _paramsTable(cmp: IComparison): HTMLElement {
    const rows = paramRows(cmp, this._differencesOnly).map(param =>
      h(
        'tr',
        { class: param.differs ? 'nbtrack-differs' : undefined, 'data-param': param.key, title: param.differs ? 'differs between the runs' : undefined },
        h('td', { class: 'nbtrack-key' }, param.key),
        ...cmp.runs.map(run => {
          const value = param.values[run.run_id];
          const missing = value === null || value === undefined;
          return h('td', { class: missing ? 'nbtrack-missing' : undefined, title: value && value.length > 40 ? value : undefined, 'data-run-id': run.run_id }, missing ? '—' : formatParam(value, 40));
        })
      )
    );
    if (!rows.length) {
      return h('p', { class: 'nbtrack-muted' }, 'Every param has the same value in these runs.');
    }
    return this._table(cmp, 'param', 'nbtrack-params', rows);
  }

  private _metricsTable(cmp: IComparison): HTMLElement {
    const metrics = cmp.metrics.filter(m => !isSystemMetric(m.key));
    if (metrics.length === 0) {
      return h('p', { class: 'nbtrack-muted' }, 'No metrics logged.');
    }
    const rows = metrics.map(metric =>
      h(
        'tr',
        { 'data-metric': metric.key },
        h('td', { class: 'nbtrack-key', title: metric.direction === 'min' ? 'lower is better' : 'higher is better' }, `${metric.key} ${metric.direction === 'min' ? '↓' : '↑'}`),
        ...cmp.runs.map(run => {
          const value = metric.values[run.run_id];
          if (!value) {
            return h('td', { class: 'nbtrack-missing', 'data-run-id': run.run_id }, '—');
          }
          const bestLast = metric.best_runs.last.includes(run.run_id);
          const bestBest = metric.best_runs.best.includes(run.run_id);
          const cell = h(
            'td',
            { class: bestLast ? 'nbtrack-num nbtrack-best' : 'nbtrack-num', title: `last value${value.steps > 1 ? `, and the best of its ${value.steps} steps` : ''}`, 'data-run-id': run.run_id },
            h('span', { class: 'nbtrack-last' }, formatNum(value.last)),
            bestLast ? h('span', { class: 'nbtrack-star', title: `best last value (${metric.direction === 'min' ? 'lowest' : 'highest'})` }, ' ★') : null
          );
          if (value.steps > 1) {
            cell.append(
              h(
                'div',
                { class: bestBest ? 'nbtrack-best-of-run nbtrack-best' : 'nbtrack-best-of-run', title: `best over its ${value.steps} steps` },
                `best ${formatNum(value.best)}`
              )
            );
          }
          return cell;
        })
      )
    );
    return h('div', {}, this._table(cmp, 'metric', 'nbtrack-metrics', rows));
  }

  /** What the delivery process measured of each run's kernel: its peak, no "best" (more
   * memory is no better run), names without their `system/` prefix. */
  private _systemSection(cmp: IComparison): HTMLElement | null {
    const measures = cmp.metrics.filter(m => isSystemMetric(m.key));
    if (!measures.length) {
      return null;
    }
    const rows = measures.map(measure =>
      h(
        'tr',
        { 'data-metric': measure.key },
        h('td', { class: 'nbtrack-key', title: measure.key }, measure.key.slice(SYSTEM_PREFIX.length)),
        ...cmp.runs.map(run => {
          const value = measure.values[run.run_id];
          return value
            ? h('td', { class: 'nbtrack-num', 'data-run-id': run.run_id, title: `peak over ${value.steps} sample${value.steps === 1 ? '' : 's'}` }, formatNum(value.best))
            : h('td', { class: 'nbtrack-missing', 'data-run-id': run.run_id }, '—');
        })
      )
    );
    return section('System', 'system', h('p', { class: 'nbtrack-muted' }, "Each run's kernel, sampled from outside it: the peak."), this._table(cmp, 'measure', 'nbtrack-system', rows));
  }

  private _curvesSection(cmp: IComparison): HTMLElement | null {
    // The notebook's own metrics first, then the system measures.
    const keys = Object.keys(cmp.histories).sort((a, b) => Number(isSystemMetric(a)) - Number(isSystemMetric(b)) || a.localeCompare(b));
    const width = this._chartWidth();
    this._charts = keys
      .map(key => MetricChart.create(key, cmp.histories[key], cmp.runs, this._names, width, this._chartView))
      .filter((c): c is MetricChart => c !== null);
    if (!this._charts.length) {
      return null;
    }
    const log = h('input', { type: 'checkbox', class: 'nbtrack-log', checked: this._chartView.log });
    const smoothing = h('input', { type: 'range', min: '0', max: '0.95', step: '0.05', value: String(this._chartView.smoothing), class: 'nbtrack-smoothing', 'aria-label': 'smoothing' });
    const smoothingValue = h('span', { class: 'nbtrack-num' }, this._chartView.smoothing.toFixed(2));
    const apply = () => {
      this._chartView = { log: log.checked, smoothing: Number(smoothing.value) };
      smoothingValue.textContent = this._chartView.smoothing.toFixed(2);
      this._charts.forEach(c => c.setView(this._chartView));
    };
    log.addEventListener('change', apply);
    smoothing.addEventListener('input', apply);
    this._chartGrid = h('div', { class: 'nbtrack-charts' }, ...this._charts.map(c => c.node));
    return section(
      'Curves',
      'curves',
      h(
        'div',
        { class: 'nbtrack-section-tools' },
        h('label', {}, log, ' log scale'),
        h('label', {}, 'smoothing ', smoothing, ' ', smoothingValue),
        h('span', { class: 'nbtrack-muted' }, 'hover for values · drag to zoom · double-click to reset')
      ),
      this._chartGrid
    );
  }

  private _chartWidth(): number {
    const available = Math.max(CHART_MIN_WIDTH, (this._chartGrid?.clientWidth || this.node.clientWidth || 800) - 4);
    const columns = Math.max(1, Math.floor(available / (CHART_MIN_WIDTH + 140)));
    return Math.floor((available - (columns - 1) * 12) / columns);
  }

  private _fitCharts(): void {
    if (!this._charts.length || !this.isVisible) {
      return;
    }
    const width = this._chartWidth();
    this._charts.forEach(c => c.setWidth(width - 8));
  }

  private _figuresSection(cmp: IComparison): HTMLElement | null {
    if (!cmp.figures.length) {
      return null;
    }
    this._gallery = new FigureGallery(cmp, this._names, {
      rendermime: this._options.rendermime,
      artifactUrl: (runId, path) => apiUrl(['artifact', runId, path], { notebook: this._notebook }),
      fetchJson: (runId, path) => requestAPI<unknown>(['artifact', runId, path], { notebook: this._notebook })
    });
    return section('Figures', 'figures', h('p', { class: 'nbtrack-muted' }, 'Click a figure to enlarge it; ← → flip between the runs.'), this._gallery.node);
  }

  private _cells(cmp: IComparison): HTMLElement {
    if (cmp.cells.length === 0) {
      return h('p', { class: 'nbtrack-muted' }, 'Every cell ran the same source in these runs.');
    }
    const heading = (runId: string) => {
      const run = cmp.runs.find(r => r.run_id === runId);
      return run ? runHeading(run, this._names).short : runId.slice(0, 8);
    };
    return h(
      'div',
      {},
      ...cmp.cells.map(cell =>
        h(
          'details',
          { class: 'nbtrack-cell', open: true, 'data-cell-id': cell.cell_id },
          h('summary', { title: `cell id ${cell.cell_id}` }, cellName(cell.index, cell.cell_id)),
          ...Object.entries(cell.diffs).map(([runId, diff]) =>
            h(
              'div',
              { class: 'nbtrack-diff-block' },
              h('div', { class: 'nbtrack-muted' }, `${heading(runId)} against the first run that ran it`),
              h(
                'pre',
                { class: 'nbtrack-diff' },
                ...diff.split('\n').map(line =>
                  h('span', { class: line.startsWith('+') && !line.startsWith('+++') ? 'nbtrack-add' : line.startsWith('-') && !line.startsWith('---') ? 'nbtrack-del' : undefined }, line + '\n')
                )
              )
            )
          ),
          ...Object.entries(cell.sources)
            .filter(([, source]) => source === null)
            .map(([runId]) => h('p', { class: 'nbtrack-muted' }, `not run in ${heading(runId)}`))
        )
      )
    );
  }

  private _inputs(cmp: IComparison): HTMLElement {
    const recorded = cmp.inputs ? Object.values(cmp.inputs.runs ?? {}).flat() : [];
    if (!cmp.inputs || recorded.length === 0) {
      return h('p', { class: 'nbtrack-muted' }, 'No input tables recorded for these runs (nbtrack.read_delta records them).');
    }
    const tables = [...new Set(recorded.map(r => r.table_uri))].sort();
    if (!cmp.inputs.differ) {
      return h('p', { class: 'nbtrack-same' }, `Same inputs in every run: ${tables.join(', ')}`);
    }
    const short = (id: string) => this._short(id);
    return h(
      'div',
      { class: 'nbtrack-drift' },
      h('p', { class: 'nbtrack-differs-text' }, 'The inputs drifted:'),
      h('ul', {}, ...cmp.inputs.drift.map(d => h('li', {}, `${short(d.run_a)} → ${short(d.run_b)}: ${d.summary}`)))
    );
  }

  private _provenance(cmp: IComparison): HTMLElement {
    const root = this._options.rootDir();
    const perRun = cmp.runs.map(run => provenance(run, root));
    const keys = [...new Set(perRun.flatMap(rows => rows.map(r => r.key)))];
    const rows = keys.map(key =>
      h(
        'tr',
        { 'data-row': key },
        h('td', { class: 'nbtrack-key' }, key),
        ...perRun.map(items => {
          const item = items.find(r => r.key === key);
          if (!item) {
            return h('td', { class: 'nbtrack-missing' }, '—');
          }
          if (item.path) {
            const link = h('a', { href: '#', title: `open ${item.path} in JupyterLab` }, item.value);
            link.addEventListener('click', event => {
              event.preventDefault();
              this._options.openPath(item.path!);
            });
            return h('td', { class: 'nbtrack-path' }, link);
          }
          return h('td', { title: item.title || (item.value.length > 30 ? item.value : undefined), class: item.key.includes('papermill') ? 'nbtrack-path' : undefined }, item.value);
        })
      )
    );
    const userRuns = cmp.runs.some(r => (r.user_runs ?? []).length)
      ? h(
          'tr',
          { 'data-row': 'user-runs', class: 'nbtrack-user-runs' },
          h('td', { class: 'nbtrack-key', title: "runs the notebook's own MLflow calls made, in its own store" }, "notebook's own MLflow runs"),
          ...cmp.runs.map(run =>
            h(
              'td',
              {},
              ...(run.user_runs ?? []).map(item =>
                h(
                  'div',
                  { title: item.tracking_uri ?? '' },
                  item.url
                    ? h('a', { href: item.url, target: '_blank', rel: 'noopener noreferrer' }, item.name || item.run_id)
                    : h('code', {}, item.name ? `${item.name} (${item.run_id.slice(0, 8)})` : item.run_id),
                  item.url ? '' : ` in ${item.tracking_uri ?? 'its store'}`
                )
              )
            )
          )
        )
      : null;
    return this._table(cmp, 'what', 'nbtrack-provenance', userRuns ? [...rows, userRuns] : rows);
  }
}

function section(title: string, key: string, ...body: (Node | null)[]): HTMLElement {
  return h('section', { class: 'nbtrack-section', 'data-section': key }, h('h3', {}, title), ...body);
}
