/**
 * The sidebar: the runs of the notebook shown, made to fit JupyterLab's default 250 px
 * sidebar. Filter, counts and messages stay on top while the list scrolls; runs made
 * elsewhere appear on their own (the panel polls the server's change token); Compare
 * opens the comparison in the main area; Re-run edits params and follows the job.
 */
import { Widget } from '@lumino/widgets';

import { button, h } from './dom';
import { compileFilter, exampleFilter, explainNoMatch } from './filter';
import { bareName, formatStart } from './format';
import { jobLine, rerunForm } from './forms';
import { ITrackedJob, JobTracker } from './jobs';
import { describeError, requestAPI } from './request';
import { columnTitle, renderRunList } from './runs';
import {
  ISortKey,
  availableColumns,
  chooseMetric,
  defaultDescending,
  isSweepParent,
  listItems,
  shownColumns,
  sortRuns
} from './table';
import { INbtrackPanel, IRunAction, IRunName, IRunRow, IRunsReply, IVersionInfo } from './tokens';

/** How often the panel asks whether runs changed (a few `stat` calls on the server). */
export const LIVE_MS = 2000;

export interface IPanelOptions {
  jobs: JobTracker;
  /** Open (or update) the comparison of these runs in the main area. */
  compare(runIds: string[], notebook: string): void;
  /** Open (or update) the view of a sweep. */
  openSweep(sweepId: string, runs: IRunRow[], metric: string | null): void;
  /** The list was reloaded: views showing its runs may relabel or grow. */
  runsChanged(panel: NbtrackPanel): void;
  addRunAction(action: IRunAction): void;
}

/** What the panel remembers per notebook (in the browser's storage). */
interface IViewState {
  metric: string | null;
  columns: string[] | null;
  collapsed: string[];
}

function loadState(notebook: string): IViewState {
  try {
    const raw = window.localStorage.getItem(`nbtrack:view:${notebook}`);
    const state = raw ? (JSON.parse(raw) as Partial<IViewState>) : {};
    return { metric: state.metric ?? null, columns: state.columns ?? null, collapsed: state.collapsed ?? [] };
  } catch {
    return { metric: null, columns: null, collapsed: [] };
  }
}

function saveState(notebook: string, state: IViewState): void {
  try {
    window.localStorage.setItem(`nbtrack:view:${notebook}`, JSON.stringify(state));
  } catch {
    // storage full or disabled: the choice lasts for this page only
  }
}

export class NbtrackPanel extends Widget implements INbtrackPanel {
  private _options: IPanelOptions;
  private _notebook: string | null = null;
  private _server: IVersionInfo | null = null;
  private _serverError: string | null = null;
  private _reply: IRunsReply | null = null;
  private _replyText = '';
  private _fetchedAt: Date | null = null;
  private _stale: string | null = null;
  private _selected = new Set<string>();
  private _highlighted = new Set<string>();
  private _sort: ISortKey = { column: 'start', descending: true };
  private _filter = '';
  private _view: IViewState = { metric: null, columns: null, collapsed: [] };
  private _loading = 0;
  private _refreshTimers: number[] = [];
  private _liveTimer = 0;

  private _title = h('h2', { class: 'nbtrack-title' }, 'nbtrack');
  private _filterInput = h('input', {
    type: 'search',
    class: 'nbtrack-filter',
    placeholder: 'filter runs',
    'aria-label': 'filter runs, e.g. lr=0.1 val_loss<0.5 status=failed',
    spellcheck: 'false'
  });
  private _toolbar = h('div', { class: 'nbtrack-toolbar' });
  private _count = h('span', { class: 'nbtrack-count', role: 'status' });
  private _metricSelect = h('select', { class: 'nbtrack-metric-select', 'aria-label': 'metric shown next to each run', title: 'metric shown next to each run' });
  private _columnsButton = button('Columns', () => this._toggleColumnMenu(), {
    class: 'jp-mod-styled nbtrack-columns-button',
    title: 'choose the columns shown after the metric',
    'aria-haspopup': 'true'
  });
  private _columnMenu = h('div', { class: 'nbtrack-column-menu', hidden: true, role: 'dialog', 'aria-label': 'columns' });
  private _message = h('div', { class: 'nbtrack-message', role: 'status', hidden: true });
  private _hint = h('div', { class: 'nbtrack-hint', hidden: true });
  private _list = h('div', { class: 'nbtrack-list', tabindex: '0', 'aria-label': 'runs' });
  private _actions = h('div', { class: 'nbtrack-actions', hidden: true });
  private _rerunArea = h('div', { class: 'nbtrack-rerun-area' });
  private _jobsArea = h('div', { class: 'nbtrack-jobs' });
  private _compareButton = button('Compare', () => this.compareSelected(), { class: 'jp-mod-styled jp-mod-accept nbtrack-compare-button' });
  private _rerunButton = button('Re-run…', () => this._openRerunForm(), { class: 'jp-mod-styled nbtrack-rerun-button' });

  constructor(options: IPanelOptions) {
    super();
    this._options = options;
    this.id = 'nbtrack-panel';
    this.addClass('nbtrack-panel');
    this.title.caption = 'nbtrack: runs of this notebook';
    const refresh = button('⟳', () => void this.refresh(), { class: 'jp-mod-styled nbtrack-refresh', title: 'reload the runs', 'aria-label': 'reload the runs' });
    this._filterInput.addEventListener('input', () => {
      this._filter = this._filterInput.value;
      this._renderRuns();
    });
    this._metricSelect.addEventListener('change', () => {
      this._view.metric = this._metricSelect.value || null;
      this._saveView();
      this._renderRuns();
    });
    this._toolbar.append(this._filterInput, h('div', { class: 'nbtrack-toolbar-line' }, this._count, this._metricSelect, this._columnsButton), this._columnMenu);
    this._actions.append(this._compareButton, this._rerunButton);
    this.node.append(
      h('header', { class: 'nbtrack-header' }, this._title, refresh),
      this._toolbar,
      this._message,
      this._hint,
      this._list,
      this._actions,
      this._rerunArea,
      this._jobsArea
    );
    options.jobs.changed.connect(this._onJob, this);
    this._updateActions();
    this._scheduleLive();
  }

  get notebook(): string | null {
    return this._notebook;
  }

  get server(): IVersionInfo | null {
    return this._server;
  }

  /** The runs listed now (newest first). */
  get runs(): IRunRow[] {
    return this._reply?.runs ?? [];
  }

  /** `#n` and names of the runs listed now. */
  names(): Map<string, IRunName> {
    return new Map(this.runs.map(r => [r.run_id, { number: r.number ?? null, label: r.label || r.run_name }]));
  }

  /** The metric the list shows next to each run. */
  get metric(): string | null {
    return chooseMetric(this.runs, this._view.metric);
  }

  addRunAction(action: IRunAction): void {
    this._options.addRunAction(action);
  }

  /** The server's handshake answer, or the message saying what to install. */
  setServer(info: IVersionInfo | null, error: string | null = null): void {
    this._server = info;
    this._serverError = error;
    this._showMessage(error, 'error');
    if (info && this._notebook) {
      void this.refresh();
    }
  }

  async showNotebook(path: string | null): Promise<void> {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    this._reply = null;
    this._replyText = '';
    this._stale = null;
    this._selected.clear();
    this._highlighted.clear();
    this._rerunArea.replaceChildren();
    this._filterInput.value = this._filter = '';
    this._view = path ? loadState(path) : { metric: null, columns: null, collapsed: [] };
    this._columnMenu.hidden = true;
    this._title.textContent = path ? path.split('/').pop()! : 'nbtrack';
    this._title.title = path ? `nbtrack: runs of ${path}` : 'nbtrack: runs of this notebook';
    this._renderJobs();
    if (!path) {
      this._toolbar.hidden = true;
      this._hint.hidden = true;
      this._list.replaceChildren(h('p', { class: 'nbtrack-muted' }, 'Open a notebook to see its runs.'));
      this._updateActions();
      return;
    }
    await this.refresh();
  }

  /**
   * Reload after a cell finished: capture delivers in the background, so look again a few
   * times (1.5 s, 4 s, 10 s after the last cell); the live poll catches anything later.
   */
  scheduleRefresh(delaysMs: number[] = [1500, 4000, 10000]): void {
    this._refreshTimers.forEach(timer => window.clearTimeout(timer));
    this._refreshTimers = delaysMs.map(delay => window.setTimeout(() => void this.refresh(), delay));
  }

  async refresh(): Promise<void> {
    const notebook = this._notebook;
    if (!notebook || !this._server) {
      if (this._serverError === null && !this._server) {
        this._list.replaceChildren(h('p', { class: 'nbtrack-muted' }, 'Connecting to the server…'));
      }
      return;
    }
    this._loading++;
    this.node.classList.add('nbtrack-loading');
    performance.mark('nbtrack-runs-request');
    try {
      const reply = await requestAPI<IRunsReply>(['runs'], { notebook });
      performance.mark('nbtrack-runs-received');
      if (notebook !== this._notebook) {
        return; // the user moved on to another notebook meanwhile
      }
      this._fetchedAt = new Date();
      this._setStale(null);
      if (this._serverError === null) {
        this._showMessage(null);
      }
      const text = JSON.stringify(reply.runs);
      const same = text === this._replyText && this._list.querySelector('table');
      this._reply = reply;
      this._replyText = text;
      if (!same) {
        const ids = new Set(reply.runs.map(r => r.run_id));
        this._selected.forEach(id => ids.has(id) || this._selected.delete(id));
        this._renderRuns();
        this._options.runsChanged(this);
      }
      // After the next paint: what bench/panel.py reports as the panel's first paint.
      requestAnimationFrame(() => setTimeout(() => performance.mark('nbtrack-runs-painted')));
    } catch (error) {
      if (notebook === this._notebook) {
        this._setStale(describeError(error));
      }
    } finally {
      this._loading--;
      if (this._loading === 0) {
        this.node.classList.remove('nbtrack-loading');
      }
    }
  }

  compareSelected(): void {
    this.compareRuns([...this._selected]);
  }

  /** Compare these runs (oldest first, as the list numbers them) in the main area. */
  compareRuns(runIds: string[]): void {
    const wanted = new Set(runIds);
    const ids = [...this.runs].reverse().map(r => r.run_id).filter(id => wanted.has(id));
    if (ids.length && this._notebook) {
      this._options.compare(ids, this._notebook);
    }
  }

  /** Show one run alone in the main area (a failed run: why it failed). */
  openRun(runId: string): void {
    if (this._notebook) {
      this._options.compare([runId], this._notebook);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this._liveTimer);
    this._refreshTimers.forEach(timer => window.clearTimeout(timer));
    this._options.jobs.changed.disconnect(this._onJob, this);
    super.dispose();
  }

  // -- live updates -------------------------------------------------------------------

  private _scheduleLive(): void {
    window.clearTimeout(this._liveTimer);
    this._liveTimer = window.setTimeout(() => void this._live(), LIVE_MS);
  }

  /** Ask the server's change token; reload the list only when it moved. */
  private async _live(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    const notebook = this._notebook;
    if (notebook && this._server && document.visibilityState === 'visible' && this._loading === 0) {
      try {
        const { token } = await requestAPI<{ token: string }>(['changes'], { notebook });
        if (notebook === this._notebook && (token !== this._reply?.token || this._stale)) {
          await this.refresh();
        }
      } catch (error) {
        if (notebook === this._notebook) {
          this._setStale(describeError(error));
        }
      }
    }
    if (!this.isDisposed) {
      this._scheduleLive();
    }
  }

  /** A failed reload keeps the last list on screen, dimmed, and says since when it is stale. */
  private _setStale(message: string | null): void {
    this._stale = message;
    this.node.classList.toggle('nbtrack-stale', message !== null);
    if (message === null) {
      if (this._serverError === null) {
        this._showMessage(null);
      }
      return;
    }
    const since = this._fetchedAt ? ` The list below is as of ${formatStart(this._fetchedAt.toISOString())} and may be out of date.` : '';
    this._showMessage(`${message}${since}`, 'error');
  }

  // -- the list -----------------------------------------------------------------------

  private _saveView(): void {
    if (this._notebook) {
      saveState(this._notebook, this._view);
    }
  }

  private _renderRuns(): void {
    const reply = this._reply;
    if (!reply) {
      return;
    }
    const runs = reply.runs;
    const executions = runs.filter(r => !isSweepParent(r));
    this._toolbar.hidden = runs.length === 0;
    if (runs.length === 0) {
      this._hint.hidden = true;
      this._list.replaceChildren(
        h(
          'div',
          { class: 'nbtrack-empty' },
          h('p', {}, 'No runs recorded for this notebook yet.'),
          h('p', { class: 'nbtrack-muted' }, 'Add ', h('code', {}, '%load_ext nbtrack'), ' to its first cell and run it: each run then appears here.')
        )
      );
      this._updateActions();
      return;
    }
    const metric = chooseMetric(executions, this._view.metric);
    this._metricSelect.replaceChildren(
      ...[...new Set(executions.flatMap(r => Object.keys(r.metrics)))].sort().map(m => h('option', { value: m, selected: m === metric }, m))
    );
    this._metricSelect.hidden = metric === null;
    const example = exampleFilter(executions, metric);
    this._filterInput.placeholder = example ? `filter, e.g. ${example}` : 'filter runs';
    const filter = compileFilter(this._filter, executions);
    const matching = this._filter.trim() ? runs.filter(r => isSweepParent(r) || filter.test(r)) : runs;
    const shown = sortRuns(matching, this._sort);
    const columns = shownColumns(executions, metric, this._view.columns);
    const items = listItems(runs, shown, new Set(this._view.collapsed));
    const matched = matching.filter(r => !isSweepParent(r)).length;
    const capped = reply.limit !== undefined && runs.length >= reply.limit;
    const total = capped ? `the newest ${executions.length}` : String(executions.length);
    this._count.textContent = this._filter.trim()
      ? `${matched} of ${total} runs`
      : `${total} run${executions.length === 1 ? '' : 's'}`; // the Compare button counts the selected ones
    this._count.title = capped ? `The panel lists the newest ${reply.limit} runs (c.NbtrackService.max_runs).` : '';
    if (filter.errors.length) {
      this._showHint(filter.errors.join(' '), 'error');
    } else if (this._filter.trim() && matched === 0) {
      this._showHint(explainNoMatch(this._filter, executions), 'info');
    } else {
      this._showHint(null);
    }
    const scroll = { top: this._list.scrollTop, left: this._list.scrollLeft };
    this._list.replaceChildren(
      renderRunList({
        items,
        metric,
        columns,
        sort: this._sort,
        selected: this._selected,
        highlighted: this._highlighted,
        mlflowRunUrl: reply.mlflow_ui_url && reply.notebook.experiment_id ? runId => `${reply.mlflow_ui_url}/#/experiments/${reply.notebook.experiment_id}/runs/${runId}` : null,
        onToggle: (runIds, on) => {
          runIds.forEach(id => (on ? this._selected.add(id) : this._selected.delete(id)));
          this._renderRuns();
        },
        onSort: column => {
          this._sort = this._sort.column === column ? { column, descending: !this._sort.descending } : { column, descending: defaultDescending(column) };
          this._renderRuns();
        },
        onToggleSweep: sweepId => {
          const collapsed = new Set(this._view.collapsed);
          if (collapsed.has(sweepId)) {
            collapsed.delete(sweepId);
          } else {
            collapsed.add(sweepId);
          }
          this._view.collapsed = [...collapsed];
          this._saveView();
          this._renderRuns();
        },
        onOpenSweep: sweepId => this._options.openSweep(sweepId, runs.filter(r => r.sweep_id === sweepId && !isSweepParent(r)), metric),
        onOpenRun: runId => this.openRun(runId)
      })
    );
    this._list.scrollTop = scroll.top;
    this._list.scrollLeft = scroll.left;
    if (!this._columnMenu.hidden) {
      this._renderColumnMenu();
    }
    this._updateActions();
  }

  private _toggleColumnMenu(): void {
    this._columnMenu.hidden = !this._columnMenu.hidden;
    this._columnsButton.setAttribute('aria-expanded', String(!this._columnMenu.hidden));
    if (!this._columnMenu.hidden) {
      this._renderColumnMenu();
    }
  }

  private _renderColumnMenu(): void {
    const executions = this.runs.filter(r => !isSweepParent(r));
    const metric = chooseMetric(executions, this._view.metric);
    const current = new Set(shownColumns(executions, metric, this._view.columns));
    const boxes = availableColumns(executions)
      .filter(column => column !== `metrics.${metric}`)
      .map(column => {
        const box = h('input', { type: 'checkbox', checked: current.has(column), 'data-column': column });
        box.addEventListener('change', () => {
          const picked = new Set(shownColumns(executions, metric, this._view.columns));
          if (box.checked) {
            picked.add(column);
          } else {
            picked.delete(column);
          }
          const order = availableColumns(executions);
          this._view.columns = order.filter(c => picked.has(c));
          this._saveView();
          this._renderRuns();
        });
        return h('label', { title: columnTitle(column) }, box, ` ${bareName(column)}`, column.startsWith('metrics.') ? h('span', { class: 'nbtrack-muted' }, ' metric') : column.startsWith('params.') ? h('span', { class: 'nbtrack-muted' }, ' param') : null);
      });
    const reset = button('Default columns', () => {
      this._view.columns = null;
      this._saveView();
      this._renderRuns();
    }, { class: 'jp-mod-styled nbtrack-columns-reset' });
    const close = button('Done', () => this._toggleColumnMenu(), { class: 'jp-mod-styled jp-mod-accept' });
    this._columnMenu.replaceChildren(h('div', { class: 'nbtrack-column-list' }, ...boxes), h('div', { class: 'nbtrack-actions' }, close, reset));
  }

  private _updateActions(): void {
    const n = this._selected.size;
    const empty = !this._reply || this._reply.runs.length === 0;
    this._actions.hidden = empty;
    this._compareButton.disabled = n < 1;
    this._compareButton.textContent = n >= 2 ? `Compare ${n} runs` : n === 1 ? 'Show 1 run' : 'Compare (select runs)';
    this._compareButton.title = n ? 'open the comparison beside the notebook' : 'tick runs to compare them';
    this._rerunButton.disabled = n !== 1;
    this._rerunButton.title = n === 1 ? 're-run the selected run, with edited params' : 'select one run to re-run';
  }

  // -- re-runs ------------------------------------------------------------------------

  private _openRerunForm(): void {
    const runId = [...this._selected][0];
    const run = this._reply?.runs.find(r => r.run_id === runId);
    if (!run) {
      return;
    }
    const notebook = this._notebook;
    const name = run.number ? `#${run.number}` : run.run_id.slice(0, 8);
    const form = rerunForm(
      `Re-run ${name}`,
      run.params,
      changed => {
        this._rerunArea.replaceChildren();
        void this._options.jobs.rerun(run.run_id, changed, notebook);
      },
      () => this._rerunArea.replaceChildren()
    );
    this._rerunArea.replaceChildren(form);
    form.querySelector('input')?.focus();
  }

  private _onJob(_: JobTracker, tracked: ITrackedJob): void {
    if (tracked.notebook !== this._notebook) {
      return;
    }
    this._renderJobs();
    if (tracked.job?.state === 'done' && tracked.newRunIds.length) {
      this._highlighted = new Set(tracked.newRunIds);
      this._renderRuns(); // the live poll may have listed the new run already: mark it now
      void this.refresh();
    } else if (tracked.job?.state === 'failed') {
      void this.refresh();
    }
  }

  private _renderJobs(): void {
    const jobs = this._options.jobs.forNotebook(this._notebook).slice(0, 5);
    const name = (runId: string) => {
      const run = this.runs.find(r => r.run_id === runId);
      return run?.number ? `#${run.number}` : runId.slice(0, 8);
    };
    this._jobsArea.replaceChildren(
      ...jobs.map(tracked => jobLine(`Re-run of ${name(tracked.runId)}`, tracked, Boolean(tracked.error) || tracked.job?.state === 'failed'))
    );
  }

  private _showHint(text: string | null, kind: 'error' | 'info' = 'info'): void {
    this._hint.textContent = text ?? '';
    this._hint.className = `nbtrack-hint nbtrack-${kind}`;
    this._hint.hidden = !text;
  }

  private _showMessage(text: string | null, kind: 'error' | 'info' = 'info'): void {
    this._message.textContent = text ?? '';
    this._message.className = `nbtrack-message nbtrack-${kind}`;
    this._message.hidden = !text;
  }
}

