/**
 * Forms and lines shared by the sidebar and the comparison: the re-run form (fields line
 * up, edited values are marked with what they were) and a job's progress line.
 */
import { button, h } from './dom';
import { formatParam } from './format';
import { ITrackedJob, describeJob, isActive } from './jobs';

/** A re-run form: one line per param (name, value), edited values marked; `start` gets the changes. */
export function rerunForm(
  title: string,
  params: Record<string, string>,
  start: (changed: Record<string, string>) => void,
  cancel: () => void
): HTMLElement {
  const inputs = new Map<string, HTMLInputElement>();
  const rows = Object.entries(params).map(([key, value]) => {
    const input = h('input', { type: 'text', value, 'data-param': key, 'aria-label': `param ${key}`, spellcheck: 'false' });
    const original = h('span', { class: 'nbtrack-was', title: 'the run\'s value' }, '');
    input.addEventListener('input', () => {
      const edited = input.value !== value;
      input.classList.toggle('nbtrack-edited', edited);
      original.textContent = edited ? `was ${formatParam(value, 20)}` : '';
    });
    inputs.set(key, input);
    return [h('label', { class: 'nbtrack-param-name', title: key }, key), input, original];
  });
  const startButton = h('button', { type: 'submit', class: 'jp-mod-styled jp-mod-accept nbtrack-rerun-start' }, 'Start re-run');
  const cancelButton = button('Cancel', () => cancel(), { class: 'jp-mod-styled jp-mod-reject nbtrack-rerun-cancel' });
  const form = h(
    'form',
    { class: 'nbtrack-rerun-form' },
    h('h3', {}, title),
    rows.length ? h('div', { class: 'nbtrack-param-grid' }, ...rows.flat()) : h('p', { class: 'nbtrack-muted' }, 'This run has no params: it runs again as it was.'),
    h('div', { class: 'nbtrack-actions' }, startButton, cancelButton)
  );
  form.addEventListener('submit', event => {
    event.preventDefault();
    const changed: Record<string, string> = {};
    inputs.forEach((input, key) => {
      if (input.value !== params[key]) {
        changed[key] = input.value;
      }
    });
    start(changed);
  });
  return form;
}

/** One job's line: what, its progress bar while it runs, then how it ended. */
export function jobLine(what: string, tracked: ITrackedJob, failed: boolean, extra: HTMLElement | null = null): HTMLElement {
  const active = isActive(tracked);
  const progress = tracked.job?.progress;
  const bar = active ? h('progress', { class: 'nbtrack-progress' }) : null;
  if (bar && progress && typeof progress.cell === 'number' && typeof progress.cells === 'number' && progress.cells > 0) {
    bar.max = progress.cells;
    bar.value = progress.cell;
  }
  const changed = Object.entries(tracked.params).map(([k, v]) => `${k}=${v}`).join(', ');
  return h(
    'div',
    { class: `nbtrack-job${failed ? ' nbtrack-job-failed' : ''}`, 'data-job': tracked.key },
    h('span', { class: 'nbtrack-job-what' }, what, changed ? ` · ${changed}` : '', ': '),
    h('span', { class: `nbtrack-job-status${failed ? ' nbtrack-error' : ''}` }, describeJob(tracked)),
    bar,
    extra
  );
}

