/**
 * The side panel: runs of the notebook shown, comparison of the selected runs,
 * and re-run of one of them with progress. All answers come from the server.
 */
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { renderComparison } from './compare';
import { h } from './dom';
import { ApiError, apiUrl, requestAPI } from './request';
import { ISortKey, renderRunsTable } from './runs';
import { IComparison, IJob, INbtrackPanel, IRunsReply, IVersionInfo } from './tokens';

const POLL_MS = 1000;

export class NbtrackPanel extends Widget implements INbtrackPanel {
  private _notebook: string | null = null;
  private _server: IVersionInfo | null = null;
  private _serverError: string | null = null;
  private _reply: IRunsReply | null = null;
  private _selected = new Set<string>();
  private _highlighted = new Set<string>();
  private _sort: ISortKey = { column: 'start', descending: true };
  private _filter = '';
  private _loading = 0;
  private _refreshTimers: number[] = [];
  private _settings = ServerConnection.makeSettings();

  private _title = h('div', { class: 'nbtrack-title' }, 'nbtrack');
  private _message = h('div', { class: 'nbtrack-message', role: 'status' });
  private _runsArea = h('div', { class: 'nbtrack-runs-area' });
  private _actions = h('div', { class: 'nbtrack-actions' });
  private _rerunArea = h('div', { class: 'nbtrack-rerun-area' });
  private _compareArea = h('div', { class: 'nbtrack-compare-area' });
  private _compareButton = h('button', { class: 'jp-mod-styled jp-mod-accept nbtrack-compare-button' }, 'Compare');
  private _rerunButton = h('button', { class: 'jp-mod-styled nbtrack-rerun-button' }, 'Re-run…');
  private _filterInput = h('input', {
    type: 'search',
    class: 'nbtrack-filter',
    placeholder: 'filter: name, status, lr=0.1 …',
    'aria-label': 'filter runs'
  });

  constructor() {
    super();
    this.id = 'nbtrack-panel';
    this.addClass('nbtrack-panel');
    this.title.caption = 'nbtrack: runs of this notebook';
    const refresh = h('button', { class: 'jp-mod-styled nbtrack-refresh', title: 'reload the runs' }, '⟳');
    refresh.addEventListener('click', () => void this.refresh());
    this._filterInput.addEventListener('input', () => {
      this._filter = this._filterInput.value;
      this._renderRuns();
    });
    this._compareButton.addEventListener('click', () => void this.compareSelected());
    this._rerunButton.addEventListener('click', () => this._openRerunForm());
    this._actions.append(this._compareButton, this._rerunButton);
    this.node.append(
      h('header', { class: 'nbtrack-header' }, this._title, refresh),
      this._message,
      h('div', { class: 'nbtrack-toolbar' }, this._filterInput),
      this._runsArea,
      this._actions,
      this._rerunArea,
      this._compareArea
    );
    this._updateActions();
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

  get notebook(): string | null {
    return this._notebook;
  }

  async showNotebook(path: string | null): Promise<void> {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    this._reply = null;
    this._selected.clear();
    this._highlighted.clear();
    this._compareArea.replaceChildren();
    this._rerunArea.replaceChildren();
    this._title.textContent = path ? path.split('/').pop()! : 'nbtrack';
    this._title.title = path ?? '';
    if (!path) {
      this._runsArea.replaceChildren(h('p', { class: 'nbtrack-muted' }, 'Open a notebook to see its runs.'));
      this._updateActions();
      return;
    }
    await this.refresh();
  }

  /**
   * Reload after a cell finished: capture delivers in the background, so look
   * again a few times (1.5 s, 4 s, 10 s after the last cell), not on every cell.
   */
  scheduleRefresh(delaysMs: number[] = [1500, 4000, 10000]): void {
    this._refreshTimers.forEach(timer => window.clearTimeout(timer));
    this._refreshTimers = delaysMs.map(delay => window.setTimeout(() => void this.refresh(), delay));
  }

  async refresh(): Promise<void> {
    const notebook = this._notebook;
    if (!notebook || !this._server) {
      if (this._serverError === null && !this._server) {
        this._runsArea.replaceChildren(h('p', { class: 'nbtrack-muted' }, 'Connecting to the server…'));
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
      this._reply = reply;
      const ids = new Set(reply.runs.map(r => r.run_id));
      this._selected.forEach(id => ids.has(id) || this._selected.delete(id));
      if (this._serverError === null) {
        this._showMessage(null);
      }
      this._renderRuns();
      // After the next paint: what bench/panel.py reports as the panel's first paint.
      requestAnimationFrame(() => setTimeout(() => performance.mark('nbtrack-runs-painted')));
    } catch (error) {
      this._showMessage(describe(error), 'error');
    } finally {
      this._loading--;
      if (this._loading === 0) {
        this.node.classList.remove('nbtrack-loading');
      }
    }
  }

  async compareSelected(): Promise<void> {
    const ids = this._orderedSelection();
    if (ids.length < 2) {
      return;
    }
    this._compareArea.replaceChildren(h('p', { class: 'nbtrack-muted' }, `Comparing ${ids.length} runs…`));
    try {
      const cmp = await requestAPI<IComparison>(['compare'], {
        ids: ids.join(','),
        notebook: this._notebook
      });
      const view = renderComparison(cmp, {
        artifactUrl: (runId, path) =>
          apiUrl(['artifact', runId, path], { notebook: this._notebook }, this._settings),
        width: Math.max(240, this.node.clientWidth - 40)
      });
      const close = h('button', { class: 'jp-mod-styled nbtrack-close', title: 'close the comparison' }, '✕');
      close.addEventListener('click', () => this._compareArea.replaceChildren());
      this._compareArea.replaceChildren(h('div', { class: 'nbtrack-compare-header' }, h('h2', {}, 'Comparison'), close), view);
    } catch (error) {
      this._compareArea.replaceChildren(h('p', { class: 'nbtrack-error' }, describe(error)));
    }
  }

  private _orderedSelection(): string[] {
    const order = this._reply?.runs.map(r => r.run_id) ?? [];
    return order.filter(id => this._selected.has(id)).reverse(); // oldest first
  }

  private _renderRuns(): void {
    const reply = this._reply;
    if (!reply) {
      return;
    }
    if (reply.runs.length === 0) {
      this._runsArea.replaceChildren(
        h(
          'div',
          { class: 'nbtrack-empty' },
          h('p', {}, 'No runs recorded for this notebook yet.'),
          h(
            'p',
            { class: 'nbtrack-muted' },
            'Add ',
            h('code', {}, '%load_ext nbtrack'),
            ' to its first cell and run it: each run then appears here.'
          )
        )
      );
      this._updateActions();
      return;
    }
    const ui = reply.mlflow_ui_url;
    const experiment = reply.notebook.experiment_id;
    this._runsArea.replaceChildren(
      h('p', { class: 'nbtrack-count' }, `${reply.runs.length} run${reply.runs.length === 1 ? '' : 's'}`),
      renderRunsTable(reply.runs, {
        selected: this._selected,
        highlighted: this._highlighted,
        sort: this._sort,
        filter: this._filter,
        mlflowRunUrl:
          ui && experiment ? runId => `${ui}/#/experiments/${experiment}/runs/${runId}` : null,
        onToggle: (runId, on) => {
          if (on) {
            this._selected.add(runId);
          } else {
            this._selected.delete(runId);
          }
          this._runsArea.querySelector(`tr[data-run-id="${runId}"]`)?.classList.toggle('nbtrack-selected', on);
          this._updateActions();
        },
        onSort: column => {
          this._sort =
            this._sort.column === column
              ? { column, descending: !this._sort.descending }
              : { column, descending: column === 'start' || column.startsWith('metrics.') };
          this._renderRuns();
        }
      })
    );
    this._updateActions();
  }

  private _updateActions(): void {
    const n = this._selected.size;
    this._actions.hidden = !this._reply || this._reply.runs.length === 0;
    this._compareButton.disabled = n < 2;
    this._compareButton.textContent = n >= 2 ? `Compare ${n} runs` : 'Compare (select 2+)';
    this._rerunButton.disabled = n !== 1;
    this._rerunButton.title = n === 1 ? 're-run the selected run, with edited params' : 'select one run to re-run';
  }

  private _openRerunForm(): void {
    const runId = [...this._selected][0];
    const run = this._reply?.runs.find(r => r.run_id === runId);
    if (!run) {
      return;
    }
    const inputs = new Map<string, HTMLInputElement>();
    const rows = Object.entries(run.params).map(([key, value]) => {
      const input = h('input', { type: 'text', value, 'data-param': key, 'aria-label': `param ${key}` });
      inputs.set(key, input);
      return h('label', { class: 'nbtrack-param-edit' }, h('span', {}, key), input);
    });
    const start = h('button', { class: 'jp-mod-styled jp-mod-accept nbtrack-rerun-start' }, 'Start re-run');
    const cancel = h('button', { class: 'jp-mod-styled' }, 'Cancel');
    cancel.addEventListener('click', () => this._rerunArea.replaceChildren());
    start.addEventListener('click', () => {
      const changed: Record<string, string> = {};
      inputs.forEach((input, key) => {
        if (input.value !== run.params[key]) {
          changed[key] = input.value;
        }
      });
      void this._rerun(run.run_id, changed);
    });
    this._rerunArea.replaceChildren(
      h(
        'div',
        { class: 'nbtrack-rerun-form' },
        h('h3', {}, `Re-run ${run.run_name || run.run_id.slice(0, 8)}`),
        rows.length ? h('div', { class: 'nbtrack-param-grid' }, ...rows) : h('p', { class: 'nbtrack-muted' }, 'This run has no params.'),
        h('div', { class: 'nbtrack-actions' }, start, cancel)
      )
    );
  }

  private async _rerun(runId: string, params: Record<string, string>): Promise<void> {
    const bar = h('progress', { class: 'nbtrack-progress' });
    const status = h('span', { class: 'nbtrack-job-status' }, 'starting…');
    this._rerunArea.replaceChildren(h('div', { class: 'nbtrack-job' }, h('span', {}, 'Re-run: '), status, bar));
    let job: IJob;
    try {
      job = await requestAPI<IJob>(['rerun'], {}, {
        method: 'POST',
        body: JSON.stringify({ run_id: runId, params, notebook: this._notebook })
      });
      while (job.state === 'queued' || job.state === 'running') {
        const { cell, cells } = job.progress;
        if (typeof cell === 'number' && typeof cells === 'number' && cells > 0) {
          bar.max = cells;
          bar.value = cell;
          status.textContent = `cell ${cell} of ${cells}`;
        } else {
          status.textContent = job.state === 'queued' ? 'waiting for a free worker…' : String(job.progress.state ?? 'running…');
        }
        await new Promise(resolve => setTimeout(resolve, POLL_MS));
        job = await requestAPI<IJob>(['jobs', job.id]);
      }
    } catch (error) {
      status.textContent = describe(error);
      status.classList.add('nbtrack-error');
      bar.remove();
      return;
    }
    bar.remove();
    if (job.state === 'failed') {
      status.textContent = `failed: ${job.message}`;
      status.classList.add('nbtrack-error');
      await this.refresh();
      return;
    }
    const newIds = (job.result?.runs ?? []).map(r => r.run_id).filter(Boolean);
    status.textContent = newIds.length ? `done: new run ${newIds.map(id => id.slice(0, 8)).join(', ')}` : 'done';
    this._highlighted = new Set(newIds);
    await this.refresh();
  }

  private _showMessage(text: string | null, kind: 'error' | 'info' = 'info'): void {
    this._message.textContent = text ?? '';
    this._message.className = `nbtrack-message nbtrack-${kind}`;
    this._message.hidden = !text;
  }
}

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    return error.message;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
