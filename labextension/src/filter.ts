/**
 * Filters people type over a notebook's runs: `test_acc>0.95`, `lr=0.1`, `status=failed`,
 * `max_depth in 2,3`, `name~baseline`, `#3`, and plain words (searched in names, statuses,
 * ids and `param=value` text). Clauses are separated by spaces (or `and`); all must hold.
 * No DOM here: the panel shows `errors` and `explainNoMatch` under the filter box.
 */
import { bareName, formatNum, toNumber } from './format';
import { IRunRow } from './tokens';

export type Op = '=' | '!=' | '>' | '>=' | '<' | '<=' | 'in' | '~';

export interface IClause {
  /** The clause as typed. */
  text: string;
  /** A column comparison; absent for a plain word. */
  key?: string;
  op?: Op;
  values?: string[];
  /** A plain word (lower case). */
  word?: string;
}

export interface IParsedFilter {
  clauses: IClause[];
}

/** Where a clause's key points, once checked against the notebook's runs. */
export interface IColumnRef {
  kind: 'param' | 'metric' | 'field';
  name: string;
}

/** Fields of a run a filter can name besides its params and metrics. */
export const FIELDS = ['status', 'name', 'id', 'sweep', 'origin', 'duration', 'number'];

const NAME = '[A-Za-z_#][\\w.#-]*';
const VALUE = '"[^"]*"|\'[^\']*\'|[^\\s,]+';
const IN_CLAUSE = new RegExp(`^(${NAME})\\s+in\\s+((?:${VALUE})(?:\\s*,\\s*(?:${VALUE}))*)`, 'i');
const CMP_CLAUSE = new RegExp(`^(${NAME})\\s*(==|!=|>=|<=|=|>|<|~)\\s*(${VALUE})`);
const WORD = new RegExp(`^(${VALUE})`);
const SEPARATOR = /^(?:[\s,]+|and\s+|AND\s+)/;

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
}

/** The clauses of a filter text (never throws: anything unrecognised is a plain word). */
export function parseFilter(text: string): IParsedFilter {
  const clauses: IClause[] = [];
  let rest = text.trim();
  while (rest) {
    const separator = SEPARATOR.exec(rest);
    if (separator) {
      rest = rest.slice(separator[0].length);
      continue;
    }
    const inMatch = IN_CLAUSE.exec(rest);
    if (inMatch) {
      const values = inMatch[2].split(/\s*,\s*/).map(unquote);
      clauses.push({ text: inMatch[0], key: inMatch[1], op: 'in', values });
      rest = rest.slice(inMatch[0].length);
      continue;
    }
    const cmp = CMP_CLAUSE.exec(rest);
    if (cmp) {
      const op = (cmp[2] === '==' ? '=' : cmp[2]) as Op;
      clauses.push({ text: cmp[0], key: cmp[1], op, values: [unquote(cmp[3])] });
      rest = rest.slice(cmp[0].length);
      continue;
    }
    const word = WORD.exec(rest)!;
    clauses.push({ text: word[0], word: unquote(word[0]).toLowerCase() });
    rest = rest.slice(word[0].length);
  }
  return { clauses };
}

/** The params and metrics the runs have. */
export function columnsOf(runs: IRunRow[]): { params: Set<string>; metrics: Set<string> } {
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const run of runs) {
    Object.keys(run.params).forEach(k => params.add(k));
    Object.keys(run.metrics).forEach(k => metrics.add(k));
  }
  return { params, metrics };
}

/**
 * What a key names: `params.x` / `metrics.x` explicitly, a field, else a param or a metric
 * of that name (a name that is both: the metric for `<`/`>`, the param otherwise).
 */
export function resolveKey(
  key: string,
  op: Op,
  columns: { params: Set<string>; metrics: Set<string> }
): IColumnRef | null {
  if (key.startsWith('params.') && columns.params.has(key.slice(7))) {
    return { kind: 'param', name: key.slice(7) };
  }
  if (key.startsWith('metrics.') && columns.metrics.has(key.slice(8))) {
    return { kind: 'metric', name: key.slice(8) };
  }
  const isParam = columns.params.has(key);
  const isMetric = columns.metrics.has(key);
  if (isParam && isMetric) {
    return ['>', '>=', '<', '<='].includes(op) ? { kind: 'metric', name: key } : { kind: 'param', name: key };
  }
  if (isParam) {
    return { kind: 'param', name: key };
  }
  if (isMetric) {
    return { kind: 'metric', name: key };
  }
  const field = key.toLowerCase() === '#' ? 'number' : key.toLowerCase();
  return FIELDS.includes(field) ? { kind: 'field', name: field } : null;
}

/** A run's value for a column reference, as text or number; null when it has none. */
export function valueOf(run: IRunRow, ref: IColumnRef): string | number | null {
  if (ref.kind === 'param') {
    return run.params[ref.name] ?? null;
  }
  if (ref.kind === 'metric') {
    const value = run.metrics[ref.name];
    return value === undefined ? null : typeof value === 'number' ? value : toNumber(value);
  }
  switch (ref.name) {
    case 'status':
      return run.status;
    case 'name':
      return `${run.label ?? ''} ${run.run_name}`.trim();
    case 'id':
      return run.run_id;
    case 'sweep':
      return run.sweep_id || null;
    case 'origin':
      return run.origin || null;
    case 'duration':
      return run.duration_s ?? null;
    case 'number':
      return run.number ?? null;
  }
  return null;
}

function equal(value: string | number, wanted: string): boolean {
  const a = typeof value === 'number' ? value : toNumber(value);
  const b = toNumber(wanted);
  if (!isNaN(a) && !isNaN(b)) {
    return a === b;
  }
  return String(value).toLowerCase() === wanted.toLowerCase();
}

function holds(value: string | number | null, op: Op, values: string[]): boolean {
  if (value === null || value === '') {
    return false;
  }
  switch (op) {
    case '=':
      return equal(value, values[0]);
    case '!=':
      return !equal(value, values[0]);
    case 'in':
      return values.some(v => equal(value, v));
    case '~':
      return String(value).toLowerCase().includes(values[0].toLowerCase());
  }
  const a = typeof value === 'number' ? value : toNumber(value);
  const b = toNumber(values[0]);
  if (isNaN(a) || isNaN(b)) {
    return false;
  }
  return op === '>' ? a > b : op === '>=' ? a >= b : op === '<' ? a < b : a <= b;
}

function searchText(run: IRunRow): string {
  return [
    run.number !== null && run.number !== undefined ? `#${run.number}` : '',
    run.label ?? '',
    run.run_name,
    run.status,
    run.run_id,
    run.sweep_id ?? '',
    ...Object.entries(run.params).map(([k, v]) => `${k}=${v}`)
  ]
    .join(' ')
    .toLowerCase();
}

/** A filter ready to apply: its predicate, and messages for keys the runs do not have. */
export interface ICompiledFilter {
  clauses: IClause[];
  errors: string[];
  test(run: IRunRow): boolean;
}

export function compileFilter(text: string, runs: IRunRow[]): ICompiledFilter {
  const { clauses } = parseFilter(text);
  const columns = columnsOf(runs);
  const errors: string[] = [];
  const tests = clauses.map(clause => clauseTest(clause, columns, errors));
  return { clauses, errors, test: run => tests.every(t => t(run)) };
}

function clauseTest(
  clause: IClause,
  columns: { params: Set<string>; metrics: Set<string> },
  errors: string[]
): (run: IRunRow) => boolean {
  if (clause.word !== undefined) {
    const word = clause.word;
    if (/^#\d+$/.test(word)) {
      return run => run.number === Number(word.slice(1));
    }
    return run => searchText(run).includes(word);
  }
  const ref = resolveKey(clause.key!, clause.op!, columns);
  if (!ref) {
    errors.push(unknownColumn(clause.key!, columns));
    return () => false;
  }
  return run => holds(valueOf(run, ref), clause.op!, clause.values!);
}

function unknownColumn(key: string, columns: { params: Set<string>; metrics: Set<string> }): string {
  const names = [...columns.params, ...columns.metrics, ...FIELDS];
  const bare = bareName(key);
  const close = names.filter(n => distance(n.toLowerCase(), bare.toLowerCase()) <= 2);
  const known = [...columns.params, ...columns.metrics].sort().slice(0, 8).join(', ');
  return close.length
    ? `No column "${key}": did you mean ${close.slice(0, 3).join(' or ')}?`
    : `No column "${key}". Columns: ${known || 'none yet'}, and ${FIELDS.slice(0, 3).join(', ')}…`;
}

/** Levenshtein distance (short names only: filters are typed by hand). */
export function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}

/**
 * Why a filter matched no run, in one sentence: the first clause no run satisfies and what
 * the runs hold instead (`no run has test_acc>0.95: the highest is 0.931`).
 */
export function explainNoMatch(text: string, runs: IRunRow[]): string {
  const { clauses } = parseFilter(text);
  const columns = columnsOf(runs);
  for (const clause of clauses) {
    const test = clauseTest(clause, columns, []);
    if (runs.some(test)) {
      continue;
    }
    if (clause.word !== undefined) {
      return `No run's name, status or params contain "${clause.word}".`;
    }
    const ref = resolveKey(clause.key!, clause.op!, columns);
    if (!ref) {
      return unknownColumn(clause.key!, columns);
    }
    const values = runs.map(r => valueOf(r, ref)).filter((v): v is string | number => v !== null && v !== '');
    const label = ref.kind === 'field' ? ref.name : clause.key!;
    if (values.length === 0) {
      return `No run has a value for ${label}.`;
    }
    const numbers = values.map(v => (typeof v === 'number' ? v : toNumber(v))).filter(v => !isNaN(v));
    if (['>', '>=', '<', '<='].includes(clause.op!) && numbers.length) {
      const high = clause.op!.startsWith('>');
      const extreme = high ? Math.max(...numbers) : Math.min(...numbers);
      return `No run has ${clause.text}: the ${high ? 'highest' : 'lowest'} ${label} is ${formatNum(extreme)}.`;
    }
    const distinct = [...new Set(values.map(v => (typeof v === 'number' ? formatNum(v) : v)))];
    const shown = distinct.slice(0, 5).join(', ') + (distinct.length > 5 ? ', …' : '');
    return `No run has ${clause.text}: ${label} is ${distinct.length === 1 ? '' : 'one of '}${shown}.`;
  }
  return clauses.length > 1
    ? 'Each part matches some runs, but no run matches all of them.'
    : 'No run matches.';
}

/**
 * A filter example that is valid for these runs and matches at least one: a param value
 * and a metric bound of the newest run that has both (`lr=0.1 val_loss<=0.07`).
 */
export function exampleFilter(runs: IRunRow[], metric: string | null = null): string {
  for (const run of runs) {
    const params = Object.entries(run.params).filter(([k, v]) => /^[A-Za-z_]\w*$/.test(k) && v !== '' && !/[\s,"']/.test(v));
    const key = metric && typeof run.metrics[metric] === 'number' ? metric : Object.keys(run.metrics).find(k => typeof run.metrics[k] === 'number');
    const parts: string[] = [];
    if (params.length) {
      parts.push(`${params[0][0]}=${params[0][1]}`);
    }
    if (key && /^[A-Za-z_]\w*$/.test(key)) {
      parts.push(`${key}<=${roundUp(run.metrics[key] as number)}`);
    }
    if (parts.length) {
      return parts.join(' ');
    }
  }
  return runs.length ? 'status=finished' : '';
}

/** A bound at or just above `value`, with 2 significant digits. */
export function roundUp(value: number): string {
  if (value === 0 || !isFinite(value)) {
    return String(value);
  }
  const magnitude = Math.pow(10, Math.floor(Math.log10(Math.abs(value))) - 1);
  const bound = Math.ceil(value / magnitude) * magnitude;
  return String(Number(bound.toPrecision(2)));
}
