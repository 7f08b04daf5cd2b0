import { describe, expect, it } from 'vitest';

import { axisPosition, metricColor, sweepAxes, variedParams } from '../src/axes';
import { chartMime, figureKind, paramRows, provenance, relativeTo, runHeading, smooth } from '../src/comparison';
import { bareName, cellName, formatDuration, formatNum, formatParam, formatStart, toNumber } from '../src/format';
import { ICompareRun, IComparison } from '../src/tokens';
import { run } from './fixtures';

describe('formatNum', () => {
  it('shows 4 significant digits, whole numbers whole', () => {
    expect(formatNum(0.123456)).toBe('0.1235');
    expect(formatNum(12.3456)).toBe('12.35');
    expect(formatNum(3)).toBe('3');
    expect(formatNum(1500)).toBe('1500');
    expect(formatNum(0)).toBe('0');
  });

  it('switches to exponents for tiny and huge values', () => {
    expect(formatNum(0.000123456)).toBe('1.235e-4');
    expect(formatNum(0.0001)).toBe('1e-4');
    expect(formatNum(1234567.8)).toBe('1.235e+6');
  });

  it('names NaN and infinities, and leaves missing values empty', () => {
    expect(formatNum('nan')).toBe('NaN');
    expect(formatNum('inf')).toBe('∞');
    expect(formatNum('-inf')).toBe('−∞');
    expect(formatNum(null)).toBe('');
    expect(formatNum(undefined)).toBe('');
  });
});

describe('other formats', () => {
  it('formats durations the same everywhere', () => {
    expect(formatDuration(6.2)).toBe('6.2 s');
    expect(formatDuration(22.4)).toBe('22 s');
    expect(formatDuration(185)).toBe('3 min 5 s');
    expect(formatDuration(3720)).toBe('1 h 2 min');
    expect(formatDuration(null)).toBe('');
  });

  it('shows start times in local time, the day only when not today', () => {
    const now = new Date(2026, 2, 3, 18, 0);
    expect(formatStart(new Date(2026, 2, 3, 14, 5).toISOString(), now)).toMatch(/^14:05$/);
    expect(formatStart(new Date(2026, 2, 1, 9, 30).toISOString(), now)).toMatch(/1.*09:30/);
    expect(formatStart(null)).toBe('');
  });

  it('numbers cells from 1, as JupyterLab\'s status bar does', () => {
    expect(cellName(0)).toBe('cell 1');
    expect(cellName(6, 'abc')).toBe('cell 7');
    expect(cellName(null, 'abc')).toBe('cell abc');
  });

  it('drops group prefixes and shortens long params', () => {
    expect(bareName('params.lr')).toBe('lr');
    expect(bareName('metrics.val_loss')).toBe('val_loss');
    expect(bareName('start')).toBe('start');
    expect(formatParam('x'.repeat(100), 10)).toBe('xxxxxxxxx…');
  });

  it('reads numbers out of text and infinities', () => {
    expect(toNumber('0.5')).toBe(0.5);
    expect(toNumber('inf')).toBe(Infinity);
    expect(toNumber('abc')).toBeNaN();
    expect(toNumber('')).toBeNaN();
  });
});

const compareRun = (id: string, tags: Record<string, string> = {}): ICompareRun => ({
  run_id: id.padEnd(32, '0'),
  run_name: `name-${id}`,
  label: `name-${id} (${id})`,
  experiment_id: '1',
  experiment_name: 'train.ipynb',
  status: 'FINISHED',
  start_time: null,
  end_time: null,
  duration_s: 6.2,
  tags
});

describe('comparison', () => {
  it('heads a run with its list number, and its full name on hover', () => {
    const r = compareRun('abc');
    const names = new Map([[r.run_id, { number: 3, label: 'lr=0.1' }]]);
    expect(runHeading(r, names)).toEqual({ short: '#3', full: `#3 lr=0.1 · ${r.run_id}` });
    expect(runHeading(r, new Map()).short).toBe(r.run_id.slice(0, 8));
  });

  it('lists differing params first, or only them', () => {
    const cmp = {
      params: [
        { key: 'a', values: {}, differs: false },
        { key: 'z', values: {}, differs: true },
        { key: 'b', values: {}, differs: true }
      ]
    } as unknown as IComparison;
    expect(paramRows(cmp, false).map(p => p.key)).toEqual(['b', 'z', 'a']);
    expect(paramRows(cmp, true).map(p => p.key)).toEqual(['b', 'z']);
  });

  it('smooths curves without pulling the start to zero', () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const smoothed = smooth([10, 10, null, 10], 0.9);
    expect(smoothed[0]).toBeCloseTo(10);
    expect(smoothed[2]).toBeNull();
    expect(smoothed[3]).toBeCloseTo(10);
  });

  it('knows figure kinds and the renderer to draw them with', () => {
    expect(['png', 'svg', 'vl.json', 'vg.json', 'json', 'bokeh.json', 'html', 'csv'].map(figureKind)).toEqual([
      'image', 'image', 'vega-lite', 'vega', 'plotly', 'bokeh', 'html', 'other'
    ]);
    const available = ['application/vnd.vegalite.v4+json', 'application/vnd.vegalite.v5+json', 'application/vnd.vega.v5+json'];
    expect(chartMime('vega-lite', { $schema: 'https://vega.github.io/schema/vega-lite/v4.17.0.json' }, available)).toBe('application/vnd.vegalite.v4+json');
    expect(chartMime('vega-lite', { $schema: 'https://vega.github.io/schema/vega-lite/v6.1.0.json' }, available)).toBe('application/vnd.vegalite.v5+json');
    expect(chartMime('plotly', {}, available)).toBeNull();
    expect(chartMime('plotly', {}, ['application/vnd.plotly.v1+json'])).toBe('application/vnd.plotly.v1+json');
  });

  it('tells where a run comes from, with papermill paths to open when they can be', () => {
    const r = compareRun('abc', {
      'nbtrack.origin': 'sweep',
      'nbtrack.git_commit': '0123456789abcdef',
      'nbtrack.git_dirty': 'true',
      'nbtrack.papermill.input_path': '/srv/project/train.ipynb',
      'nbtrack.papermill.output_path': '/srv/project/.nbtrack/outputs/s/1.ipynb',
      'nbtrack.sweep_id': 's',
      'nbtrack.sweep.index': '1'
    });
    const rows = Object.fromEntries(provenance(r, '/srv/project').map(p => [p.key, p]));
    expect(rows['git commit'].value).toBe('0123456789 + uncommitted changes');
    expect(rows['papermill input'].path).toBe('train.ipynb');
    expect(rows['papermill output'].path).toBeUndefined();
    expect(rows.sweep.value).toBe('s, execution 1');
    expect(relativeTo('/srv/project/', '/elsewhere/x.ipynb')).toBeNull();
  });
});

describe('sweep axes', () => {
  const runs = [
    run({ lr: '0.001', kernel: 'rbf', seed: '0' }, { acc: 0.5 }),
    run({ lr: '0.1', kernel: 'linear', seed: '0' }, { acc: 0.9 }),
    run({ lr: '1', kernel: 'rbf', seed: '0' }, {})
  ];

  it('has one axis per varied param, then the metric', () => {
    expect(variedParams(runs)).toEqual(['kernel', 'lr']);
    const axes = sweepAxes(runs, 'acc');
    expect(axes.map(a => [a.key, a.kind, a.numeric, a.log])).toEqual([
      ['kernel', 'param', false, false],
      ['lr', 'param', true, true],
      ['acc', 'metric', true, false]
    ]);
  });

  it('places values from 0 to 1, missing ones nowhere', () => {
    const [kernel, lr, acc] = sweepAxes(runs, 'acc');
    expect(axisPosition(kernel, runs[1])).toBe(0);
    expect(axisPosition(kernel, runs[0])).toBe(1);
    expect(axisPosition(lr, runs[0])).toBe(0);
    expect(axisPosition(lr, runs[1])).toBeCloseTo(2 / 3);
    expect(axisPosition(acc, runs[2])).toBeNull();
  });

  it('colours the best run yellow whichever way is better', () => {
    expect(metricColor('acc', 0.9, 0.5, 0.9)).toBe('rgb(253,231,37)');
    expect(metricColor('val_loss', 0.1, 0.1, 0.9)).toBe('rgb(253,231,37)');
  });
});
