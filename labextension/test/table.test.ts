import { describe, expect, it } from 'vitest';

import {
  availableColumns,
  bestValue,
  chooseMetric,
  defaultColumns,
  defaultDescending,
  isSystemMetric,
  keyParams,
  listItems,
  lowerIsBetter,
  shownColumns,
  sortRuns
} from '../src/table';
import { notebookRuns, run } from './fixtures';

describe('sortRuns', () => {
  it('sorts metrics as numbers and puts runs without one last, either way', () => {
    const runs = [run({}, { acc: 0.5 }), run({}, {}), run({}, { acc: 'nan' }), run({}, { acc: 0.9 }), run({}, { acc: 0.1 })];
    const order = (descending: boolean) => sortRuns(runs, { column: 'metrics.acc', descending }).map(r => r.metrics.acc ?? '-');
    expect(order(true)).toEqual([0.9, 0.5, 0.1, '-', 'nan']);
    expect(order(false)).toEqual([0.1, 0.5, 0.9, '-', 'nan']);
  });

  it('sorts numeric params as numbers, text after numbers, missing last', () => {
    const runs = [run({ lr: '0.1' }, {}), run({ lr: '1e-3' }, {}), run({}, {}), run({ lr: 'auto' }, {}), run({ lr: '10' }, {})];
    expect(sortRuns(runs, { column: 'params.lr', descending: false }).map(r => r.params.lr ?? '-')).toEqual(['1e-3', '0.1', '10', 'auto', '-']);
    expect(sortRuns(runs, { column: 'params.lr', descending: true }).map(r => r.params.lr ?? '-')).toEqual(['auto', '10', '0.1', '1e-3', '-']);
  });

  it('sorts by start, duration and name, keeping ties in list order', () => {
    const runs = notebookRuns();
    expect(sortRuns(runs, { column: 'start', descending: true }).map(r => r.number)).toEqual([3, 2, 1]);
    expect(sortRuns([...runs, run({}, {}, { duration_s: null })], { column: 'duration', descending: true }).at(-1)!.duration_s).toBeNull();
    const same = [run({}, {}, { label: 'b' }), run({}, {}, { label: 'a' }), run({}, {}, { label: 'b' })];
    expect(sortRuns(same, { column: 'name', descending: false }).map(r => r.run_id)).toEqual([same[1].run_id, same[0].run_id, same[2].run_id]);
  });
});

describe('metric direction', () => {
  it('follows nbtrack/metric_direction.py', () => {
    expect(lowerIsBetter('val_loss')).toBe(true);
    expect(lowerIsBetter('test/RMSE')).toBe(true);
    expect(lowerIsBetter('trainLoss')).toBe(true);
    expect(lowerIsBetter('neg_log_loss')).toBe(false);
    expect(lowerIsBetter('accuracy')).toBe(false);
    expect(lowerIsBetter('f1_score')).toBe(false);
  });

  it('sorts a fresh metric column best first', () => {
    expect(defaultDescending('metrics.val_loss')).toBe(false);
    expect(defaultDescending('metrics.test_acc')).toBe(true);
    expect(defaultDescending('start')).toBe(true);
    expect(defaultDescending('params.lr')).toBe(false);
  });

  it('finds the best value by that rule', () => {
    const runs = notebookRuns();
    expect(bestValue(runs, 'val_loss')).toBe(0.2);
    expect(bestValue(runs, 'test_acc')).toBe(0.96);
    expect(bestValue(runs, 'nothing')).toBeNull();
  });

  it("takes no failed run's last value for the best", () => {
    const runs = [run({ lr: '0.2' }, { val_loss: 0.14 }), run({ lr: '5' }, { val_loss: 0.0066 }, { status: 'FAILED' })];
    expect(bestValue(runs, 'val_loss')).toBe(0.14);
    expect(bestValue([runs[1]], 'val_loss')).toBeNull();
  });
});

describe('system measures', () => {
  const runs = [
    run({ lr: '0.1' }, { 'system/kernel_memory_mb': 212, 'system/kernel_cpu_percent': 51, accuracy: 0.5 }),
    run({ lr: '0.2' }, { 'system/kernel_memory_mb': 213, 'system/kernel_cpu_percent': 40, accuracy: 0.6, val_loss: 0.2 })
  ];

  it('are told apart by their prefix', () => {
    expect(isSystemMetric('system/kernel_memory_mb')).toBe(true);
    expect(isSystemMetric('val_loss')).toBe(false);
  });

  it("are never the row's metric while the notebook logged one of its own", () => {
    expect(chooseMetric(runs, null)).toBe('accuracy');
    expect(chooseMetric(runs, 'system/kernel_memory_mb')).toBe('system/kernel_memory_mb'); // the user's pick stands
    expect(chooseMetric([run({}, { 'system/kernel_memory_mb': 1 })], null)).toBe('system/kernel_memory_mb');
  });

  it("are no default column, and come after the notebook's metrics in the picker", () => {
    expect(defaultColumns(runs, 'accuracy')).toEqual(['start', 'duration', 'params.lr', 'metrics.val_loss']);
    expect(availableColumns(runs).filter(c => c.startsWith('metrics.'))).toEqual([
      'metrics.accuracy',
      'metrics.val_loss',
      'metrics.system/kernel_cpu_percent',
      'metrics.system/kernel_memory_mb'
    ]);
  });
});

describe('columns', () => {
  it('shows the params that vary first', () => {
    const runs = [run({ a: '1', lr: '0.1', seed: '0' }, {}), run({ a: '1', lr: '0.2', seed: '1' }, {})];
    expect(keyParams(runs, 2)).toEqual(['lr', 'seed']);
  });

  it('picks the metric most runs have, preferring a validation or test one', () => {
    const runs = [run({}, { train_loss: 1, val_loss: 2 }), run({}, { train_loss: 1, val_loss: 2, extra: 3 })];
    expect(chooseMetric(runs, null)).toBe('val_loss');
    expect(chooseMetric(runs, 'extra')).toBe('extra');
    expect(chooseMetric(runs, 'gone')).toBe('val_loss');
    expect(chooseMetric([], null)).toBeNull();
  });

  it('offers every field, param and metric, and defaults to a short set', () => {
    const runs = notebookRuns();
    expect(availableColumns(runs)).toEqual([
      'start', 'duration', 'status', 'origin', 'params.lr', 'params.max_depth', 'metrics.test_acc', 'metrics.val_loss'
    ]);
    expect(defaultColumns(runs, 'val_loss')).toEqual(['start', 'duration', 'params.lr', 'params.max_depth', 'metrics.test_acc']);
  });

  it('keeps the user pick, minus columns that are gone and the row metric', () => {
    const runs = notebookRuns();
    expect(shownColumns(runs, 'val_loss', ['params.lr', 'params.gone', 'metrics.val_loss', 'status'])).toEqual(['params.lr', 'status']);
    expect(shownColumns(runs, 'val_loss', null)).toEqual(defaultColumns(runs, 'val_loss'));
  });
});

describe('listItems', () => {
  const parent = run({ lr: '[0.1, 0.2]' }, {}, { sweep_id: 's1', parent_run_id: '', number: null });
  const a = run({ lr: '0.1' }, { acc: 0.5 }, { sweep_id: 's1', parent_run_id: parent.run_id });
  const b = run({ lr: '0.2' }, { acc: 0.7 }, { sweep_id: 's1', parent_run_id: parent.run_id });
  const solo = run({ lr: '0.3' }, { acc: 0.6 });
  const all = [solo, b, a, parent];

  it('gathers a sweep under one header where its first run sorts', () => {
    const shown = sortRuns(all, { column: 'metrics.acc', descending: true });
    const items = listItems(all, shown, new Set());
    expect(items.map(i => (i.kind === 'run' ? i.run.params.lr : `sweep ${i.group.id}`))).toEqual(['sweep s1', '0.2', '0.1', '0.3']);
    const header = items[0];
    expect(header.kind === 'sweep' && header.group.parent?.run_id).toBe(parent.run_id);
  });

  it('hides a collapsed sweep\'s runs and counts only those the filter kept', () => {
    const items = listItems(all, [solo, a], new Set(['s1']));
    expect(items.map(i => i.kind)).toEqual(['run', 'sweep']);
    const header = items[1];
    expect(header.kind === 'sweep' && [header.shown.length, header.group.runs.length, header.collapsed]).toEqual([1, 2, true]);
  });
});
