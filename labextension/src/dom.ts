/**
 * Small DOM and formatting helpers. Text always goes in as text nodes, never as
 * HTML, so run names, params and cell sources cannot inject markup.
 */
import { Num } from './tokens';

type Child = Node | string | number | null | undefined | false;

/** `h('td', {class: 'x', title: 't'}, 'text', child)`: an element with text-only strings. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(typeof child === 'number' ? String(child) : child);
  }
  return node;
}

/** A metric value for display: 4 significant digits, NaN/inf as words. */
export function formatNum(value: Num | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value === 'nan' ? 'NaN' : value === 'inf' ? '∞' : value === '-inf' ? '−∞' : value;
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

/** A number for sorting and charts: NaN for missing or non-finite values. */
export function toNumber(value: Num | null | undefined): number {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'inf') {
    return Infinity;
  }
  if (value === '-inf') {
    return -Infinity;
  }
  return NaN;
}

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

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** "14:03" today, "Mar 3 14:03" before (formatters made once: a list may hold 1,000 runs). */
export function formatStart(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  const time = timeFormat.format(date);
  if (date.toDateString() === new Date().toDateString()) {
    return time;
  }
  return `${dayFormat.format(date)} ${time}`;
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
