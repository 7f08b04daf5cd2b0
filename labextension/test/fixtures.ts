/** Run rows as GET /nbtrack/api/runs returns them, for the view logic's tests. */
import { IRunRow, Num } from '../src/tokens';

let counter = 0;

export function run(
  params: Record<string, string>,
  metrics: Record<string, Num>,
  extra: Partial<IRunRow> = {}
): IRunRow {
  counter++;
  const id = counter.toString(16).padStart(32, '0');
  return {
    run_id: id,
    run_name: `run-${counter}`,
    status: 'FINISHED',
    start_time: new Date(Date.UTC(2026, 0, 1, 12, counter)).toISOString(),
    end_time: null,
    duration_s: counter,
    number: counter,
    label: `run-${counter}`,
    params,
    metrics,
    ...extra
  };
}

/** Three runs of a notebook as a grid of lr × max_depth would make them, one failed. */
export function notebookRuns(): IRunRow[] {
  return [
    run({ lr: '0.1', max_depth: '2' }, { test_acc: 0.91, val_loss: 0.3 }, { number: 1 }),
    run({ lr: '0.01', max_depth: '3' }, { test_acc: 0.96, val_loss: 0.2 }, { number: 2 }),
    run({ lr: '1', max_depth: '5' }, { val_loss: 'nan' }, { number: 3, status: 'FAILED' })
  ];
}
