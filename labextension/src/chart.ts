/**
 * Overlaid metric curves (one line per run) drawn with uPlot.
 */
import uPlot from 'uplot';

import { RUN_COLORS, h, toNumber } from './dom';
import { ICompareRun, Num } from './tokens';

/** A chart of `metric` for every run that logged it; null when no run has 2+ points. */
export function metricChart(
  metric: string,
  history: Record<string, [number, Num][]>,
  runs: ICompareRun[],
  width: number
): HTMLElement | null {
  const present = runs.filter(r => (history[r.run_id] ?? []).length > 0);
  if (!present.some(r => history[r.run_id].length > 1)) {
    return null;
  }
  const steps = Array.from(
    new Set(present.flatMap(r => history[r.run_id].map(([step]) => step)))
  ).sort((a, b) => a - b);
  const index = new Map(steps.map((s, i) => [s, i]));
  const data: uPlot.AlignedData = [
    steps,
    ...present.map(run => {
      const column: (number | null)[] = steps.map(() => null);
      for (const [step, value] of history[run.run_id]) {
        const y = toNumber(value);
        column[index.get(step)!] = isFinite(y) ? y : null;
      }
      return column;
    })
  ];
  const container = h('div', { class: 'nbtrack-chart', 'data-metric': metric });
  const options: uPlot.Options = {
    title: metric,
    width: Math.max(240, width),
    height: 180,
    scales: { x: { time: false } },
    axes: [{ label: 'step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }, {}],
    series: [
      { label: 'step' },
      ...present.map(run => ({
        label: run.label,
        stroke: RUN_COLORS[runs.indexOf(run) % RUN_COLORS.length],
        width: 2,
        spanGaps: true,
        points: { show: steps.length < 30 }
      }))
    ],
    legend: { show: true, live: false }
  };
  new uPlot(options, data, container);
  return container;
}
