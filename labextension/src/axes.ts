/**
 * Axes of the sweep view, apart from the DOM: one per param the sweep varies (numbers on a
 * linear or, across orders of magnitude, a log scale; anything else as evenly spaced
 * categories) and one for the metric; and a colour per run from worst to best.
 */
import { toNumber } from './format';
import { lowerIsBetter } from './table';
import { IRunRow } from './tokens';

export interface IAxis {
  key: string;
  kind: 'param' | 'metric';
  /** Numeric axes place values by `min`/`max` (log10 when `log`); categorical ones by `categories`. */
  numeric: boolean;
  log: boolean;
  min: number;
  max: number;
  categories: string[];
}

/** The params a set of runs varies, in name order. */
export function variedParams(runs: IRunRow[]): string[] {
  const values = new Map<string, Set<string>>();
  for (const run of runs) {
    for (const [key, value] of Object.entries(run.params)) {
      values.set(key, (values.get(key) ?? new Set()).add(value));
    }
  }
  return [...values.entries()]
    .filter(([, seen]) => seen.size > 1)
    .map(([key]) => key)
    .sort();
}

function numericAxis(key: string, kind: IAxis['kind'], numbers: number[]): IAxis {
  const min = Math.min(...numbers);
  const max = Math.max(...numbers);
  const log = min > 0 && max / min >= 100;
  return { key, kind, numeric: true, log, min, max, categories: [] };
}

/** One axis per varied param, then the metric's. */
export function sweepAxes(runs: IRunRow[], metric: string | null): IAxis[] {
  const axes: IAxis[] = variedParams(runs).map(key => {
    const raw = runs.map(r => r.params[key]).filter((v): v is string => v !== undefined);
    const numbers = raw.map(v => toNumber(v));
    if (numbers.every(v => isFinite(v))) {
      return numericAxis(key, 'param', numbers);
    }
    const categories = [...new Set(raw)].sort();
    return { key, kind: 'param', numeric: false, log: false, min: 0, max: 0, categories };
  });
  if (metric) {
    const numbers = runs.map(r => toNumber(r.metrics[metric])).filter(v => isFinite(v));
    if (numbers.length) {
      axes.push({ ...numericAxis(metric, 'metric', numbers), log: false });
    }
  }
  return axes;
}

/** Where a run sits on an axis: 0 (bottom) … 1 (top); null when it has no value there. */
export function axisPosition(axis: IAxis, run: IRunRow): number | null {
  const raw = axis.kind === 'param' ? run.params[axis.key] : run.metrics[axis.key];
  if (raw === undefined || raw === null) {
    return null;
  }
  if (!axis.numeric) {
    const i = axis.categories.indexOf(String(raw));
    if (i < 0) {
      return null;
    }
    return axis.categories.length === 1 ? 0.5 : i / (axis.categories.length - 1);
  }
  const value = toNumber(raw);
  if (!isFinite(value)) {
    return null;
  }
  if (axis.max === axis.min) {
    return 0.5;
  }
  if (axis.log) {
    return (Math.log10(value) - Math.log10(axis.min)) / (Math.log10(axis.max) - Math.log10(axis.min));
  }
  return (value - axis.min) / (axis.max - axis.min);
}

/** The tick labels of an axis (values at 0 … 1). */
export function axisTicks(axis: IAxis): { at: number; value: number | string }[] {
  if (!axis.numeric) {
    return axis.categories.map((c, i) => ({ at: axis.categories.length === 1 ? 0.5 : i / (axis.categories.length - 1), value: c }));
  }
  if (axis.max === axis.min) {
    return [{ at: 0.5, value: axis.min }];
  }
  return [0, 0.5, 1].map(at => ({
    at,
    value: axis.log
      ? Math.pow(10, Math.log10(axis.min) + at * (Math.log10(axis.max) - Math.log10(axis.min)))
      : axis.min + at * (axis.max - axis.min)
  }));
}

const WORST = [128, 90, 200];
const MIDDLE = [33, 145, 140];
const BEST = [253, 231, 37];

/** A colour from worst (violet, visible on dark themes too) through teal to best (yellow) for a run's metric value. */
export function metricColor(metric: string, value: number, min: number, max: number): string {
  let t = max === min ? 1 : (value - min) / (max - min);
  if (lowerIsBetter(metric)) {
    t = 1 - t;
  }
  const [a, b, u] = t < 0.5 ? [WORST, MIDDLE, t * 2] : [MIDDLE, BEST, (t - 0.5) * 2];
  const mix = a.map((c, i) => Math.round(c + (b[i] - c) * u));
  return `rgb(${mix.join(',')})`;
}
