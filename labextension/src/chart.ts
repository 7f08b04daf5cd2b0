/**
 * Overlaid metric curves (one line per run), drawn with uPlot, readable as W&B's are:
 * hovering shows every run's value at that step, dragging zooms (double-click resets),
 * the y axis can be logarithmic, curves can be smoothed, and the chart follows the width
 * of its container. Its legend is one wrapped line of run numbers, never taller than the chart.
 */
import uPlot from 'uplot';

import { runHeading, smooth } from './comparison';
import { h, swatch } from './dom';
import { formatNum, runColor, toNumber } from './format';
import { lowerIsBetter } from './table';
import { ICompareRun, IRunName, Num } from './tokens';

export interface IChartView {
  log: boolean;
  /** 0 (raw) … 0.99 */
  smoothing: number;
}

export const CHART_HEIGHT = 190;

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** A chart of one metric; `null` when no run has two or more points. */
export class MetricChart {
  readonly node: HTMLElement;
  readonly metric: string;
  private _plot: uPlot | null = null;
  private _steps: number[];
  private _raw: (number | null)[][];
  private _runs: ICompareRun[];
  private _names: Map<string, IRunName>;
  private _readout: HTMLElement;
  private _plotHost: HTMLElement;
  private _width: number;
  private _view: IChartView;
  private _note: HTMLElement;
  private _zoomNote: HTMLElement;
  private _colors: string[];

  static create(
    metric: string,
    history: Record<string, [number, Num][]>,
    runs: ICompareRun[],
    names: Map<string, IRunName>,
    width: number,
    view: IChartView
  ): MetricChart | null {
    const present = runs.filter(r => (history[r.run_id] ?? []).length > 0);
    if (!present.some(r => history[r.run_id].length > 1)) {
      return null;
    }
    return new MetricChart(metric, history, runs, present, names, width, view);
  }

  private constructor(
    metric: string,
    history: Record<string, [number, Num][]>,
    allRuns: ICompareRun[],
    present: ICompareRun[],
    names: Map<string, IRunName>,
    width: number,
    view: IChartView
  ) {
    this.metric = metric;
    this._runs = present;
    this._names = names;
    this._width = width;
    this._view = view;
    this._steps = Array.from(new Set(present.flatMap(r => history[r.run_id].map(([step]) => step)))).sort(
      (a, b) => a - b
    );
    const index = new Map(this._steps.map((s, i) => [s, i]));
    this._raw = present.map(run => {
      const column: (number | null)[] = this._steps.map(() => null);
      for (const [step, value] of history[run.run_id]) {
        const y = toNumber(value);
        column[index.get(step)!] = isFinite(y) ? y : null;
      }
      return column;
    });
    this._readout = h('div', { class: 'nbtrack-readout', role: 'status', hidden: true });
    this._plotHost = h('div', { class: 'nbtrack-plot' });
    this._note = h('span', { class: 'nbtrack-chart-note' });
    this._zoomNote = h('span', { class: 'nbtrack-chart-note nbtrack-zoom-note', hidden: true });
    const legend = h(
      'div',
      { class: 'nbtrack-legend' },
      ...present.map((run, i) => {
        const heading = runHeading(run, names);
        const item = h(
          'button',
          { type: 'button', class: 'nbtrack-legend-item', title: `${heading.full}\nclick to hide or show`, 'aria-pressed': 'true' },
          swatch(runColor(allRuns.indexOf(run))),
          heading.short
        );
        item.addEventListener('click', () => {
          const shown = item.getAttribute('aria-pressed') !== 'true';
          item.setAttribute('aria-pressed', String(shown));
          this._plot?.setSeries(i + 1, { show: shown });
        });
        return item;
      })
    );
    this.node = h(
      'div',
      { class: 'nbtrack-chart', 'data-metric': metric },
      h('div', { class: 'nbtrack-chart-title' }, h('span', {}, metric), this._note, this._zoomNote),
      h('div', { class: 'nbtrack-plot-area' }, this._plotHost, this._readout),
      legend
    );
    this._colors = present.map(run => runColor(allRuns.indexOf(run)));
    this._plotHost.addEventListener('mouseleave', () => (this._readout.hidden = true));
    this._draw();
  }

  /** Follow the container: a new width keeps the zoom and the data. */
  setWidth(width: number): void {
    this._width = width;
    this._plot?.setSize({ width: Math.max(200, width), height: CHART_HEIGHT });
  }

  setView(view: IChartView): void {
    this._view = view;
    this._draw();
  }

  dispose(): void {
    this._plot?.destroy();
    this._plot = null;
  }

  private _draw(): void {
    this._plot?.destroy();
    const positive = this._raw.every(col => col.every(v => v === null || v > 0));
    const log = this._view.log && positive;
    this._note.textContent = this._view.log && !positive ? ' (values ≤ 0: linear scale)' : '';
    const axisColor = cssVar('--jp-ui-font-color2', '#616161');
    const gridColor = cssVar('--jp-border-color2', '#e0e0e0');
    const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 } };
    const data: uPlot.AlignedData = [this._steps, ...this._raw.map(col => smooth(col, this._view.smoothing))];
    const options: uPlot.Options = {
      width: Math.max(200, this._width),
      height: CHART_HEIGHT,
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [
        { ...axis, label: 'step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000] },
        { ...axis, values: (_u: uPlot, ticks: number[]) => ticks.map(t => formatNum(t)), size: 56 }
      ],
      series: [
        { label: 'step' },
        ...this._runs.map((run, i) => ({
          label: runHeading(run, this._names).short,
          stroke: this._colors[i],
          width: 2,
          spanGaps: true,
          points: { show: this._steps.length < 30 }
        }))
      ],
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      hooks: { setCursor: [u => this._showReadout(u)], setScale: [(u, key) => key === 'x' && this._showZoom(u)] }
    };
    this._zoomNote.hidden = true;
    this._plot = new uPlot(options, data, this._plotHost);
  }

  /** Say when the chart shows a part of the steps (a drag zoomed in), and how to undo it. */
  private _showZoom(u: uPlot): void {
    const { min, max } = u.scales.x;
    const first = this._steps[0];
    const last = this._steps[this._steps.length - 1];
    const zoomed = min !== undefined && max !== undefined && (min > first || max < last);
    this._zoomNote.hidden = !zoomed;
    this._zoomNote.textContent = zoomed ? ` · steps ${formatNum(min!)}–${formatNum(max!)} (double-click to see all)` : '';
  }

  /** Every run's value at the hovered step, best first, next to the cursor. */
  private _showReadout(u: uPlot): void {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
      this._readout.hidden = true;
      return;
    }
    const step = this._steps[idx];
    const smoothed = this._view.smoothing > 0;
    const rows = this._runs
      .map((run, i) => ({ run, i, raw: this._raw[i][idx], shown: (u.data[i + 1] as (number | null)[])[idx] }))
      .filter(r => r.raw !== null && u.series[r.i + 1].show !== false);
    const sign = lowerIsBetter(this.metric) ? 1 : -1; // the best value first
    rows.sort((a, b) => sign * ((a.raw as number) - (b.raw as number)));
    this._readout.replaceChildren(
      h('div', { class: 'nbtrack-readout-step' }, `step ${step}`),
      ...rows.map(r =>
        h(
          'div',
          { class: 'nbtrack-readout-row', 'data-run-id': r.run.run_id },
          swatch(this._colors[r.i]),
          h('span', { class: 'nbtrack-readout-run', title: runHeading(r.run, this._names).full }, runHeading(r.run, this._names).short),
          h('span', { class: 'nbtrack-num' }, formatNum(r.raw)),
          smoothed && r.shown !== null ? h('span', { class: 'nbtrack-muted' }, ` ~${formatNum(r.shown)}`) : null
        )
      )
    );
    if (!rows.length) {
      this._readout.hidden = true;
      return;
    }
    this._readout.hidden = false;
    const left = u.cursor.left + u.bbox.left / devicePixelRatio;
    const flip = left > u.width / 2;
    this._readout.style.left = flip ? '' : `${left + 12}px`;
    this._readout.style.right = flip ? `${u.width - left + 12}px` : '';
  }
}
