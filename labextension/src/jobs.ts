/**
 * Re-runs started from the panel or a comparison, followed until they end. A job belongs to
 * its notebook, not to what the panel shows: its progress goes on while the user looks at
 * another notebook, and shows again on return. Disposing the tracker stops every poll.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, requestAPI } from './request';
import { IJob } from './tokens';

const POLL_MS = 1000;

export interface ITrackedJob {
  /** Local id (the server's job id once it answered). */
  key: string;
  notebook: string | null;
  runId: string;
  /** What the user changed. */
  params: Record<string, string>;
  job: IJob | null;
  /** Why it could not start or be followed (the server's message, or a network error). */
  error: string | null;
  /** The new runs, once done. */
  newRunIds: string[];
}

/** The progress line a job shows: "cell 3 of 12", "waiting for a free worker…", "done: …". */
export function describeJob(tracked: ITrackedJob): string {
  if (tracked.error) {
    return tracked.error;
  }
  const job = tracked.job;
  if (!job) {
    return 'starting…';
  }
  if (job.state === 'failed') {
    return `failed: ${job.message}`;
  }
  if (job.state === 'done') {
    const ids = tracked.newRunIds.map(id => id.slice(0, 8));
    return ids.length ? `done: new run ${ids.join(', ')}` : 'done';
  }
  const { cell, cells, state } = job.progress;
  if (typeof cell === 'number' && typeof cells === 'number' && cells > 0) {
    return `cell ${cell} of ${cells}`;
  }
  return job.state === 'queued' ? 'waiting for a free worker…' : String(state ?? 'running…');
}

export function isActive(tracked: ITrackedJob): boolean {
  return !tracked.error && (!tracked.job || tracked.job.state === 'queued' || tracked.job.state === 'running');
}

export class JobTracker implements IDisposable {
  private _jobs: ITrackedJob[] = [];
  private _changed = new Signal<this, ITrackedJob>(this);
  private _disposed = false;
  private _timers = new Set<number>();
  private _counter = 0;

  /** A job started, moved on or ended. */
  get changed(): ISignal<this, ITrackedJob> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Jobs of a notebook, newest first. */
  forNotebook(notebook: string | null): ITrackedJob[] {
    return this._jobs.filter(j => j.notebook === notebook).reverse();
  }

  /** Re-run `runId` with `params` changed; resolves once the server accepted (or refused) it. */
  async rerun(runId: string, params: Record<string, string>, notebook: string | null): Promise<ITrackedJob> {
    const tracked: ITrackedJob = {
      key: `local-${++this._counter}`,
      notebook,
      runId,
      params,
      job: null,
      error: null,
      newRunIds: []
    };
    this._jobs.push(tracked);
    this._emit(tracked);
    try {
      tracked.job = await requestAPI<IJob>(['rerun'], {}, {
        method: 'POST',
        body: JSON.stringify({ run_id: runId, params, notebook })
      });
      tracked.key = tracked.job.id;
    } catch (error) {
      tracked.error = describeError(error);
    }
    this._emit(tracked);
    if (!tracked.error) {
      this._schedule(tracked);
    }
    return tracked;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._timers.forEach(timer => clearTimeout(timer));
    this._timers.clear();
    Signal.clearData(this);
  }

  private _schedule(tracked: ITrackedJob): void {
    if (this._disposed || !isActive(tracked)) {
      return;
    }
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      void this._poll(tracked);
    }, POLL_MS);
    this._timers.add(timer);
  }

  private async _poll(tracked: ITrackedJob): Promise<void> {
    if (this._disposed || !tracked.job) {
      return;
    }
    try {
      tracked.job = await requestAPI<IJob>(['jobs', tracked.job.id]);
    } catch (error) {
      tracked.error = `lost track of the re-run: ${describeError(error)}`;
    }
    if (this._disposed) {
      return;
    }
    if (tracked.job.state === 'done') {
      tracked.newRunIds = (tracked.job.result?.runs ?? []).map(r => r.run_id).filter(Boolean);
    }
    this._emit(tracked);
    this._schedule(tracked);
  }

  private _emit(tracked: ITrackedJob): void {
    if (!this._disposed) {
      this._changed.emit(tracked);
    }
  }
}
