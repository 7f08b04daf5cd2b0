/**
 * The comparison's logic, apart from the DOM: run headers, which params to show, curve
 * smoothing, figure kinds and provenance rows.
 */
import { formatDateTime, formatDuration, shortId } from './format';
import { ICompareParam, ICompareRun, IComparison, IRunName } from './tokens';

/** `#3` (or the short id of a run outside the list) and the full name shown on hover. */
export function runHeading(run: ICompareRun, names: Map<string, IRunName>): { short: string; full: string } {
  const name = names.get(run.run_id);
  const label = name?.label || run.run_name;
  const short = name && name.number !== null ? `#${name.number}` : shortId(run.run_id);
  return { short, full: `${short} ${label} · ${run.run_id}` };
}

/** Params in reading order: the ones that differ first, then by name; `differencesOnly` drops the rest. */
export function paramRows(cmp: IComparison, differencesOnly: boolean): ICompareParam[] {
  return [...cmp.params]
    .filter(p => !differencesOnly || p.differs)
    .sort((a, b) => Number(b.differs) - Number(a.differs) || a.key.localeCompare(b.key));
}

/**
 * Exponential moving average of a curve, debiased like TensorBoard's smoothing (the first
 * points are not pulled towards zero). `weight` 0 leaves the curve as it is.
 */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) {
    return values;
  }
  let last = 0;
  let count = 0;
  return values.map(value => {
    if (value === null || !isFinite(value)) {
      return value;
    }
    last = last * weight + (1 - weight) * value;
    count++;
    return last / (1 - Math.pow(weight, count));
  });
}

export type FigureKind = 'image' | 'vega-lite' | 'vega' | 'plotly' | 'bokeh' | 'html' | 'other';

/** What a figure file is, from its (possibly two-part) extension. */
export function figureKind(ext: string): FigureKind {
  switch (ext.toLowerCase()) {
    case 'png':
    case 'jpg':
    case 'jpeg':
    case 'gif':
    case 'svg':
    case 'webp':
      return 'image';
    case 'vl.json':
      return 'vega-lite';
    case 'vg.json':
      return 'vega';
    case 'json':
      return 'plotly';
    case 'bokeh.json':
    case 'bokeh.js':
      return 'bokeh';
    case 'html':
      return 'html';
  }
  return 'other';
}

/** The MIME type to render a spec with: its own version when JupyterLab renders it, else the
 * newest version it does render (Vega-Lite v6 specs draw with v5), else null. */
export function chartMime(kind: FigureKind, spec: { $schema?: string }, available: readonly string[]): string | null {
  if (kind === 'plotly') {
    return available.includes('application/vnd.plotly.v1+json') ? 'application/vnd.plotly.v1+json' : null;
  }
  if (kind !== 'vega-lite' && kind !== 'vega') {
    return null;
  }
  const family = kind === 'vega-lite' ? 'vegalite' : 'vega';
  const pattern = new RegExp(`^application/vnd\\.${family}\\.v(\\d+)\\+json$`);
  const versions = available
    .map(m => pattern.exec(m))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(m => Number(m[1]))
    .sort((a, b) => b - a);
  if (!versions.length) {
    return null;
  }
  const wanted = Number(/\/v(\d+)/.exec(spec.$schema ?? '')?.[1] ?? versions[0]);
  const version = versions.includes(wanted) ? wanted : versions[0];
  return `application/vnd.${family}.v${version}+json`;
}

/** One line of a run's provenance: what, its value, a link when there is one. */
export interface IProvenance {
  key: string;
  value: string;
  title?: string;
  /** Open a file in JupyterLab (path relative to the server root) or follow a URL. */
  path?: string;
  url?: string;
}

/** Where a run comes from: how it ran, its code and data, and where its evidence is. */
export function provenance(run: ICompareRun, rootDir: string | null): IProvenance[] {
  const tags = run.tags ?? {};
  const rows: IProvenance[] = [
    { key: 'status', value: run.status.toLowerCase() },
    { key: 'started', value: formatDateTime(run.start_time), title: run.start_time ?? '' },
    { key: 'duration', value: formatDuration(run.duration_s) },
    { key: 'origin', value: tags['nbtrack.origin'] ?? '' },
    { key: 'notebook', value: tags['nbtrack.notebook'] ?? run.experiment_name }
  ];
  const commit = tags['nbtrack.git_commit'];
  if (commit) {
    const dirty = tags['nbtrack.git_dirty'] === 'true' ? ' + uncommitted changes' : '';
    const branch = tags['nbtrack.git_branch'] ? ` on ${tags['nbtrack.git_branch']}` : '';
    rows.push({ key: 'git commit', value: `${commit.slice(0, 10)}${branch}${dirty}`, title: commit });
  }
  const input = tags['nbtrack.papermill.input_path'];
  const output = tags['nbtrack.papermill.output_path'];
  if (input) {
    rows.push({ key: 'papermill input', value: input, path: relativeTo(rootDir, input) ?? undefined });
  }
  if (output) {
    rows.push({ key: 'papermill output', value: output, path: relativeTo(rootDir, output) ?? undefined });
  }
  const sweep = tags['nbtrack.sweep_id'];
  if (sweep) {
    const index = tags['nbtrack.sweep.index'];
    rows.push({ key: 'sweep', value: index ? `${sweep}, execution ${index}` : sweep });
  }
  if (tags['nbtrack.rerun_of']) {
    rows.push({ key: 're-run of', value: tags['nbtrack.rerun_of'] });
  }
  if (tags['nbtrack.out_of_order']) {
    rows.push({ key: 'cells out of order', value: tags['nbtrack.out_of_order'] });
  }
  if (tags['nbtrack.python']) {
    rows.push({ key: 'python', value: tags['nbtrack.python'] });
  }
  rows.push({ key: 'MLflow run', value: `${run.run_name} · ${run.run_id}` });
  return rows.filter(r => r.value !== '');
}

/** `path` relative to the server's root when it lies inside it and JupyterLab can open it
 * (no hidden folder on the way), else null. */
export function relativeTo(rootDir: string | null, path: string): string | null {
  if (!rootDir) {
    return null;
  }
  const root = rootDir.replace(/[\\/]+$/, '') + '/';
  if (!path.startsWith(root)) {
    return null;
  }
  const relative = path.slice(root.length);
  return relative.split('/').some(part => part.startsWith('.')) ? null : relative;
}
