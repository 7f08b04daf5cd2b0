/**
 * A sweep's view, in a main-area tab: parallel coordinates (one axis per param the sweep
 * varies, then the metric; one line per run, coloured from worst to best) and a scatter of
 * the metric against each param. Click lines or points to pick runs, then compare them.
 * It follows the run list: executions that end while it is open appear in it.
 */
import { Widget } from '@lumino/widgets';

import { IAxis, axisPosition, axisTicks, metricColor, sweepAxes } from './axes';
import { button, h } from './dom';
import { formatNum, toNumber } from './format';
import { chooseMetric, lowerIsBetter } from './table';
import { IRunRow } from './tokens';

const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, String(v)));
  children.forEach(c => node.append(c));
  return node;
}

export interface ISweepOptions {
  /** Compare these runs in the comparison tab. */
  compare(runIds: string[]): void;
}

export class SweepWidget extends Widget {
  private _sweepId = '';
  private _runs: IRunRow[] = [];
  private _metric: string | null = null;
  private _picked = new Set<string>();
  private _options: ISweepOptions;
  private _resize: ResizeObserver;
  private _width = 0;

  constructor(options: ISweepOptions) {
    super();
    this._options = options;
    this.id = 'nbtrack-sweep';
    this.addClass('nbtrack-main');
    this.addClass('nbtrack-sweep-view');
    this.title.closable = true;
    this._resize = new ResizeObserver(() => {
      if (Math.abs(this.node.clientWidth - this._width) > 20) {
        this._render();
      }
    });
    this._resize.observe(this.node);
  }

  get sweepId(): string {
    return this._sweepId;
  }

  /** Show a sweep's executions (the list's rows of that sweep, any order). */
  showSweep(sweepId: string, runs: IRunRow[], metric: string | null): void {
    if (sweepId !== this._sweepId) {
      this._picked.clear();
    }
    this._sweepId = sweepId;
    this._runs = runs;
    this._metric = chooseMetric(runs, metric ?? this._metric);
    this.title.label = `Sweep ${sweepId.replace(/^\d{8}-/, '')}`;
    this.title.caption = `nbtrack: sweep ${sweepId}`;
    this._render();
  }

  dispose(): void {
    this._resize.disconnect();
    super.dispose();
  }

  private _render(): void {
    this._width = this.node.clientWidth;
    const runs = this._runs;
    const metric = this._metric;
    const failed = runs.filter(r => r.status === 'FAILED' || r.status === 'KILLED').length;
    const metrics = [...new Set(runs.flatMap(r => Object.keys(r.metrics)))].sort();
    const select = h('select', { class: 'nbtrack-sweep-metric', 'aria-label': 'metric' }, ...metrics.map(m => h('option', { value: m, selected: m === metric }, m)));
    select.addEventListener('change', () => {
      this._metric = select.value;
      this._render();
    });
    const compare = button(`Compare ${this._picked.size} picked`, () => this._options.compare([...this._picked]), {
      class: 'jp-mod-styled jp-mod-accept nbtrack-sweep-compare',
      disabled: this._picked.size < 1,
      title: 'click lines or points to pick runs'
    });
    const axes = sweepAxes(runs, metric);
    const width = Math.max(360, this._width - 40);
    const body = axes.length < 2
      ? h('p', { class: 'nbtrack-muted' }, runs.length < 2 ? 'This sweep has fewer than two executions yet.' : 'Its runs share every param value: nothing to plot against.')
      : h('div', {}, this._parallel(axes, width), this._scatters(axes, width));
    this.node.replaceChildren(
      h(
        'div',
        { class: 'nbtrack-compare' },
        h('header', { class: 'nbtrack-compare-header' }, h('h2', {}, `Sweep ${this._sweepId}`)),
        h(
          'div',
          { class: 'nbtrack-section-tools' },
          h('span', {}, `${runs.length} executions${failed ? `, ${failed} failed` : ''}`),
          metrics.length ? h('label', {}, 'metric ', select, metric ? ` (${lowerIsBetter(metric) ? 'lower' : 'higher'} is better)` : '') : null,
          compare
        ),
        body
      )
    );
  }

  private _color(run: IRunRow, metricAxis: IAxis | undefined): string {
    if (!metricAxis) {
      return 'var(--jp-brand-color1)';
    }
    const value = toNumber(run.metrics[metricAxis.key]);
    return isFinite(value) ? metricColor(metricAxis.key, value, metricAxis.min, metricAxis.max) : 'var(--jp-ui-font-color3)';
  }

  private _toggle(runId: string): void {
    if (this._picked.has(runId)) {
      this._picked.delete(runId);
    } else {
      this._picked.add(runId);
    }
    this._render();
  }

  private _label(run: IRunRow): string {
    const value = this._metric ? formatNum(run.metrics[this._metric]) : '';
    return `#${run.number ?? '?'} ${run.label ?? run.run_name}${value ? ` · ${this._metric} ${value}` : ''} (${run.status.toLowerCase()})`;
  }

  /** One vertical axis per param and the metric; one polyline per run. */
  private _parallel(axes: IAxis[], width: number): HTMLElement {
    const height = 280;
    const top = 24;
    const bottom = 36;
    const left = 50;
    const right = 60;
    const span = height - top - bottom;
    const x = (i: number) => left + (i * (width - left - right)) / Math.max(1, axes.length - 1);
    const y = (at: number) => top + (1 - at) * span;
    const metricAxis = axes.find(a => a.kind === 'metric');
    const plot = svg('svg', { width, height, class: 'nbtrack-parallel', role: 'img', 'aria-label': 'parallel coordinates of the sweep' });
    for (const run of this._runs) {
      const points = axes.map((axis, i) => {
        const at = axisPosition(axis, run);
        return at === null ? null : `${x(i)},${y(at)}`;
      });
      const path = points.filter(Boolean).join(' ');
      if (!path) {
        continue;
      }
      const picked = this._picked.has(run.run_id);
      const line = svg('polyline', {
        points: path,
        fill: 'none',
        stroke: this._color(run, metricAxis),
        'stroke-width': picked ? 4 : 2,
        'stroke-dasharray': run.status === 'FAILED' || run.status === 'KILLED' ? '4 3' : '',
        class: `nbtrack-line${picked ? ' nbtrack-picked' : ''}`,
        'data-run-id': run.run_id
      }, svg('title', {}, this._label(run)));
      line.addEventListener('click', () => this._toggle(run.run_id));
      plot.append(line);
    }
    axes.forEach((axis, i) => {
      plot.append(svg('line', { x1: x(i), x2: x(i), y1: top, y2: top + span, class: 'nbtrack-axis' }));
      plot.append(svg('text', { x: x(i), y: height - 12, 'text-anchor': 'middle', class: `nbtrack-axis-label${axis.kind === 'metric' ? ' nbtrack-axis-metric' : ''}` }, axis.key + (axis.log ? ' (log)' : '')));
      for (const tick of axisTicks(axis)) {
        plot.append(svg('text', { x: x(i) - 4, y: y(tick.at) + 4, 'text-anchor': 'end', class: 'nbtrack-tick' }, typeof tick.value === 'number' ? formatNum(tick.value) : tick.value));
      }
    });
    return h('section', { class: 'nbtrack-section', 'data-section': 'parallel' }, h('h3', {}, 'Parallel coordinates'), h('div', { class: 'nbtrack-scroll' }, plot));
  }

  /** The metric against each param the sweep varies. */
  private _scatters(axes: IAxis[], width: number): HTMLElement | null {
    const metricAxis = axes.find(a => a.kind === 'metric');
    if (!metricAxis) {
      return null;
    }
    const params = axes.filter(a => a.kind === 'param');
    const size = { w: Math.min(320, Math.max(220, Math.floor(width / Math.min(3, params.length)) - 16)), h: 200 };
    const pad = { l: 56, r: 12, t: 12, b: 34 };
    const plots = params.map(axis => {
      const plot = svg('svg', { width: size.w, height: size.h, class: 'nbtrack-scatter', 'data-param': axis.key });
      const px = (at: number) => pad.l + at * (size.w - pad.l - pad.r);
      const py = (at: number) => pad.t + (1 - at) * (size.h - pad.t - pad.b);
      plot.append(svg('line', { x1: pad.l, x2: size.w - pad.r, y1: size.h - pad.b, y2: size.h - pad.b, class: 'nbtrack-axis' }));
      plot.append(svg('line', { x1: pad.l, x2: pad.l, y1: pad.t, y2: size.h - pad.b, class: 'nbtrack-axis' }));
      for (const tick of axisTicks(axis)) {
        plot.append(svg('text', { x: px(tick.at), y: size.h - pad.b + 14, 'text-anchor': 'middle', class: 'nbtrack-tick' }, typeof tick.value === 'number' ? formatNum(tick.value) : tick.value));
      }
      for (const tick of axisTicks(metricAxis)) {
        plot.append(svg('text', { x: pad.l - 4, y: py(tick.at) + 4, 'text-anchor': 'end', class: 'nbtrack-tick' }, formatNum(tick.value as number)));
      }
      plot.append(svg('text', { x: (pad.l + size.w - pad.r) / 2, y: size.h - 4, 'text-anchor': 'middle', class: 'nbtrack-axis-label' }, axis.key));
      for (const run of this._runs) {
        const ax = axisPosition(axis, run);
        const ay = axisPosition(metricAxis, run);
        if (ax === null || ay === null) {
          continue;
        }
        const picked = this._picked.has(run.run_id);
        const dot = svg('circle', { cx: px(ax), cy: py(ay), r: picked ? 7 : 5, fill: this._color(run, metricAxis), class: `nbtrack-point${picked ? ' nbtrack-picked' : ''}`, 'data-run-id': run.run_id }, svg('title', {}, this._label(run)));
        dot.addEventListener('click', () => this._toggle(run.run_id));
        plot.append(dot);
      }
      return h('figure', { class: 'nbtrack-scatter-figure' }, plot);
    });
    return h('section', { class: 'nbtrack-section', 'data-section': 'scatter' }, h('h3', {}, `${metricAxis.key} against each param`), h('div', { class: 'nbtrack-scatters' }, ...plots));
  }
}
