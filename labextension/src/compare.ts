/**
 * The comparison view: params (differences highlighted), metrics (best marked),
 * overlaid curves, figures of the same cell side by side, changed cells, inputs.
 * It only lays out what the server's comparison says.
 */
import { metricChart } from './chart';
import { RUN_COLORS, formatDuration, formatNum, h } from './dom';
import { IComparison, ICompareRun } from './tokens';

export interface ICompareViewOptions {
  /** URL of a run's artifact (served by the server extension). */
  artifactUrl(runId: string, path: string): string;
  /** Width available for charts, in CSS pixels. */
  width: number;
}

function runHeader(runs: ICompareRun[], first: string): HTMLTableRowElement {
  return h(
    'tr',
    {},
    h('th', {}, first),
    ...runs.map((run, i) =>
      h(
        'th',
        { title: run.run_id },
        h('span', {
          class: 'nbtrack-swatch',
          style: `background:${RUN_COLORS[i % RUN_COLORS.length]}`
        }),
        run.label
      )
    )
  );
}

function section(title: string, ...body: (Node | string | null)[]): HTMLElement {
  return h('section', { class: 'nbtrack-section' }, h('h3', {}, title), ...body);
}

function paramsTable(cmp: IComparison): HTMLElement {
  if (cmp.params.length === 0) {
    return h('p', { class: 'nbtrack-muted' }, 'No params logged.');
  }
  const rows = [...cmp.params].sort((a, b) => Number(b.differs) - Number(a.differs));
  return h(
    'table',
    { class: 'nbtrack-table nbtrack-params' },
    h('thead', {}, runHeader(cmp.runs, 'param')),
    h(
      'tbody',
      {},
      ...rows.map(param =>
        h(
          'tr',
          {
            class: param.differs ? 'nbtrack-differs' : undefined,
            'data-param': param.key,
            title: param.differs ? 'differs between the runs' : undefined
          },
          h('td', { class: 'nbtrack-key' }, param.key),
          ...cmp.runs.map(run => {
            const value = param.values[run.run_id];
            return h(
              'td',
              { class: value === null || value === undefined ? 'nbtrack-missing' : undefined },
              value ?? '—'
            );
          })
        )
      )
    )
  );
}

function metricsTable(cmp: IComparison): HTMLElement {
  if (cmp.metrics.length === 0) {
    return h('p', { class: 'nbtrack-muted' }, 'No metrics logged.');
  }
  return h(
    'table',
    { class: 'nbtrack-table nbtrack-metrics' },
    h('thead', {}, runHeader(cmp.runs, 'metric (last / best)')),
    h(
      'tbody',
      {},
      ...cmp.metrics.map(metric =>
        h(
          'tr',
          { 'data-metric': metric.key },
          h(
            'td',
            {
              class: 'nbtrack-key',
              title: metric.direction === 'min' ? 'lower is better' : 'higher is better'
            },
            `${metric.key} ${metric.direction === 'min' ? '↓' : '↑'}`
          ),
          ...cmp.runs.map(run => {
            const value = metric.values[run.run_id];
            if (!value) {
              return h('td', { class: 'nbtrack-missing' }, '—');
            }
            const bestLast = metric.best_runs.last.includes(run.run_id);
            const bestBest = metric.best_runs.best.includes(run.run_id);
            const cell = h(
              'td',
              { class: bestLast ? 'nbtrack-best' : undefined, title: `${value.steps} step(s)` },
              h('span', { class: 'nbtrack-last' }, formatNum(value.last)),
              bestLast ? h('span', { class: 'nbtrack-star', title: 'best last value' }, ' ★') : null
            );
            if (value.steps > 1) {
              cell.append(
                h(
                  'span',
                  { class: bestBest ? 'nbtrack-best-of-run nbtrack-best' : 'nbtrack-best-of-run' },
                  ` / ${formatNum(value.best)}`
                )
              );
            }
            return cell;
          })
        )
      )
    )
  );
}

function curves(cmp: IComparison, width: number): HTMLElement | null {
  const charts = Object.keys(cmp.histories)
    .sort()
    .map(key => metricChart(key, cmp.histories[key], cmp.runs, width))
    .filter((c): c is HTMLElement => c !== null);
  return charts.length ? h('div', { class: 'nbtrack-charts' }, ...charts) : null;
}

function figures(cmp: IComparison, options: ICompareViewOptions): HTMLElement | null {
  if (cmp.figures.length === 0) {
    return null;
  }
  return h(
    'div',
    {},
    ...cmp.figures.map(group =>
      h(
        'div',
        { class: 'nbtrack-figure-group', 'data-key': group.key },
        h(
          'h4',
          {},
          group.cell_id ? `cell ${group.cell_id} · figure ${(group.n ?? 0) + 1}` : group.key
        ),
        h(
          'div',
          { class: 'nbtrack-figure-row' },
          ...cmp.runs.map((run, i) => {
            const files = group.runs[run.run_id] ?? [];
            const latest = files[files.length - 1];
            return h(
              'figure',
              { class: 'nbtrack-figure' },
              latest
                ? h('img', {
                    src: options.artifactUrl(run.run_id, latest.path),
                    alt: `${run.label}: ${latest.path}`,
                    loading: 'lazy'
                  })
                : h('div', { class: 'nbtrack-missing' }, 'no figure'),
              h(
                'figcaption',
                {},
                h('span', {
                  class: 'nbtrack-swatch',
                  style: `background:${RUN_COLORS[i % RUN_COLORS.length]}`
                }),
                run.label
              )
            );
          })
        )
      )
    )
  );
}

function cells(cmp: IComparison): HTMLElement {
  if (cmp.cells.length === 0) {
    return h('p', { class: 'nbtrack-muted' }, 'Every cell ran the same source in these runs.');
  }
  const labels = new Map(cmp.runs.map(r => [r.run_id, r.label]));
  return h(
    'div',
    {},
    ...cmp.cells.map(cell =>
      h(
        'details',
        { class: 'nbtrack-cell', open: true },
        h(
          'summary',
          {},
          cell.index !== null ? `cell [${cell.index + 1}] ${cell.cell_id}` : `cell ${cell.cell_id}`
        ),
        ...Object.entries(cell.diffs).map(([runId, diff]) =>
          h(
            'pre',
            { class: 'nbtrack-diff', title: labels.get(runId) ?? runId },
            ...diff.split('\n').map(line =>
              h(
                'span',
                {
                  class: line.startsWith('+')
                    ? 'nbtrack-add'
                    : line.startsWith('-')
                      ? 'nbtrack-del'
                      : undefined
                },
                line + '\n'
              )
            )
          )
        ),
        ...Object.entries(cell.sources)
          .filter(([, source]) => source === null)
          .map(([runId]) => h('p', { class: 'nbtrack-muted' }, `not run in ${labels.get(runId)}`))
      )
    )
  );
}

function userRuns(cmp: IComparison): HTMLElement | null {
  const rows = cmp.runs.flatMap(run => (run.user_runs ?? []).map(item => ({ run, item })));
  if (rows.length === 0) {
    return null;
  }
  return h(
    'ul',
    { class: 'nbtrack-user-runs' },
    ...rows.map(({ run, item }) =>
      h(
        'li',
        { title: item.tracking_uri ?? '' },
        `${run.label}: `,
        item.url
          ? h('a', { href: item.url, target: '_blank', rel: 'noopener' }, item.name || item.run_id)
          : h('code', {}, item.name ? `${item.name} (${item.run_id.slice(0, 8)})` : item.run_id),
        item.url ? '' : ` in ${item.tracking_uri ?? 'its store'}`
      )
    )
  );
}

function inputs(cmp: IComparison): HTMLElement {
  const recorded = cmp.inputs ? Object.values(cmp.inputs.runs ?? {}).flat() : [];
  if (!cmp.inputs || recorded.length === 0) {
    return h('p', { class: 'nbtrack-muted' }, 'No input tables recorded for these runs.');
  }
  const tables = [...new Set(recorded.map(r => r.table_uri))].sort();
  if (!cmp.inputs.differ) {
    return h('p', { class: 'nbtrack-same' }, `Same inputs in every run: ${tables.join(', ')}`);
  }
  const labels = new Map(cmp.runs.map(r => [r.run_id, r.label]));
  return h(
    'div',
    { class: 'nbtrack-drift' },
    h('p', { class: 'nbtrack-differs-text' }, 'The inputs drifted:'),
    h(
      'ul',
      {},
      ...cmp.inputs.drift.map(d =>
        h(
          'li',
          {},
          `${labels.get(d.run_a) ?? d.run_a} → ${labels.get(d.run_b) ?? d.run_b}: ${d.summary}`
        )
      )
    )
  );
}

/** The whole comparison as one element. */
export function renderComparison(cmp: IComparison, options: ICompareViewOptions): HTMLElement {
  const summary = h(
    'p',
    { class: 'nbtrack-muted' },
    cmp.runs.map(r => `${r.label}: ${r.status} ${formatDuration(r.duration_s)}`).join(' · ')
  );
  const chartArea = curves(cmp, options.width);
  const figureArea = figures(cmp, options);
  const userArea = userRuns(cmp);
  return h(
    'div',
    { class: 'nbtrack-compare' },
    summary,
    section('Params', h('div', { class: 'nbtrack-scroll' }, paramsTable(cmp))),
    section('Metrics', h('div', { class: 'nbtrack-scroll' }, metricsTable(cmp))),
    chartArea ? section('Curves', chartArea) : null,
    figureArea ? section('Figures', figureArea) : null,
    section('Cells that differ', cells(cmp)),
    section('Inputs', inputs(cmp)),
    userArea ? section("The notebook's own MLflow runs", userArea) : null
  );
}
