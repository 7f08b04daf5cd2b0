import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { IJob } from '../src/tokens';

const requestAPI = vi.fn();
vi.mock('../src/request', () => ({
  requestAPI: (...args: unknown[]) => requestAPI(...args),
  describeError: (error: unknown) => (error instanceof Error ? error.message : String(error))
}));

const { JobTracker, describeJob } = await import('../src/jobs');

function job(state: IJob['state'], progress: IJob['progress'] = {}, runs: string[] = []): IJob {
  return {
    id: 'j1',
    kind: 'rerun',
    target: 'r1',
    state,
    progress,
    result: state === 'done' ? { runs: runs.map(run_id => ({ run_id }) as never) } : null,
    message: state === 'failed' ? 'boom' : '',
    created: 0,
    started: null,
    finished: null
  };
}

describe('JobTracker', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    requestAPI.mockReset();
  });
  afterEach(() => vi.useRealTimers());

  it('follows a re-run to its end, for its notebook only', async () => {
    requestAPI
      .mockResolvedValueOnce(job('queued'))
      .mockResolvedValueOnce(job('running', { cell: 2, cells: 5 }))
      .mockResolvedValueOnce(job('done', {}, ['n1']));
    const tracker = new JobTracker();
    const seen: string[] = [];
    tracker.changed.connect((_, tracked) => seen.push(describeJob(tracked)));
    await tracker.rerun('r1', { lr: '0.5' }, 'train.ipynb');
    expect(requestAPI).toHaveBeenCalledWith(['rerun'], {}, expect.objectContaining({ method: 'POST' }));
    await vi.advanceTimersByTimeAsync(1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen).toEqual(['starting…', 'waiting for a free worker…', 'cell 2 of 5', 'done: new run n1']);
    expect(tracker.forNotebook('train.ipynb')[0].newRunIds).toEqual(['n1']);
    expect(tracker.forNotebook('other.ipynb')).toEqual([]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(requestAPI).toHaveBeenCalledTimes(3); // no polling after the end
  });

  it('stops polling when disposed', async () => {
    requestAPI.mockResolvedValue(job('running'));
    const tracker = new JobTracker();
    await tracker.rerun('r1', {}, 'train.ipynb');
    await vi.advanceTimersByTimeAsync(1000);
    const calls = requestAPI.mock.calls.length;
    tracker.dispose();
    await vi.advanceTimersByTimeAsync(10000);
    expect(requestAPI.mock.calls.length).toBe(calls);
    expect(tracker.isDisposed).toBe(true);
  });

  it('says why a re-run could not start', async () => {
    requestAPI.mockRejectedValueOnce(new Error('params must be an object'));
    const tracker = new JobTracker();
    const tracked = await tracker.rerun('r1', {}, null);
    expect(describeJob(tracked)).toBe('params must be an object');
    await vi.advanceTimersByTimeAsync(5000);
    expect(requestAPI).toHaveBeenCalledTimes(1);
  });
});
