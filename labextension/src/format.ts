/**
 * How values read: one set of rules for the list, the comparison and the sweep view
 * (the inline twin, `nbtrack/widgets.py`, follows the same ones). No DOM here.
 */
import { Num } from './tokens';

/** A number as the panel shows it: 4 significant digits, NaN/inf as words; integers whole. */
export function formatNum(value: Num | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value === 'nan' ? 'NaN' : value === 'inf' ? '∞' : value === '-inf' ? '−∞' : value;
  }
  if (Number.isInteger(value)) {
    return Math.abs(value) >= 1e9 ? value.toExponential(3) : String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3).replace(/\.?0+e/, 'e');
  }
  return String(Number(value.toPrecision(4)));
}

/** A param value as logged (params are text); long ones are shortened, in full on hover. */
export function formatParam(value: string | null | undefined, max = 60): string {
  if (value === null || value === undefined) {
    return '';
  }
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/** A number for sorting and charts: NaN for missing, text or non-finite-as-text values. */
export function toNumber(value: Num | string | null | undefined): number {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'inf') {
    return Infinity;
  }
  if (value === '-inf') {
    return -Infinity;
  }
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return isNaN(parsed) ? NaN : parsed;
  }
  return NaN;
}

/** "0.4 s", "6.2 s", "22 s", "3 min 5 s", "1 h 2 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23'
});

/** "14:03" today, "Mar 3 14:03" before, in local time (formatters made once: lists are long). */
export function formatStart(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  const time = timeFormat.format(date);
  if (date.toDateString() === now.toDateString()) {
    return time;
  }
  return `${dayFormat.format(date)} ${time}`;
}

/** The full local date and time (tooltips, provenance). */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return isNaN(date.getTime()) ? iso : fullFormat.format(date);
}

/** A cell as the panel names it: its 1-based position, as JupyterLab's status bar counts. */
export function cellName(index: number | null | undefined, cellId?: string | null): string {
  if (typeof index === 'number') {
    return `cell ${index + 1}`;
  }
  return cellId ? `cell ${cellId}` : 'a cell';
}

/** `params.lr` → `lr`: column names read without their group prefix. */
export function bareName(column: string): string {
  return column.replace(/^(params|metrics|tags)\./, '');
}

export function shortId(runId: string): string {
  return runId.slice(0, 8);
}

/** Distinct, readable colours for up to 10 runs (then they repeat). */
export const RUN_COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf'
];

export function runColor(i: number): string {
  return RUN_COLORS[i % RUN_COLORS.length];
}
