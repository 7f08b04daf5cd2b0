/**
 * What registering a run's model sends and says (no DOM: unit-tested; the action that asks
 * for a name is `register.ts`).
 */
import { ICompareRun, IRegistration, IRunModel } from './tokens';

/** The JSON body of a registration. */
export function registerBody(
  run: ICompareRun,
  name: string,
  model: string | null,
  notebook: string | null | undefined
): Record<string, string> {
  const body: Record<string, string> = { run_id: run.run_id, name: name.trim() };
  if (model) {
    body.model = model;
  }
  if (notebook) {
    body.notebook = notebook;
  }
  return body;
}

/** How a registration reads once done: `clf → models:/churn/2`, or that it already was. */
export function describeRegistration(done: IRegistration): string {
  const aliases = done.aliases.length ? ` (${done.aliases.map(a => `@${a}`).join(', ')})` : '';
  return `${done.model} ${done.created ? '→' : 'already is'} ${done.uri}${aliases}`;
}

/** A run row's models: its `models` column holds the run's `nbtrack.models` tag (JSON). */
export function rowModels(models: unknown): Pick<IRunModel, 'name' | 'flavor' | 'size'>[] {
  let items: unknown = models;
  if (typeof models === 'string') {
    try {
      items = models ? JSON.parse(models) : [];
    } catch {
      return [];
    }
  }
  if (!Array.isArray(items)) {
    return [];
  }
  return items
    .filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null && typeof m.name === 'string')
    .map(m => ({ name: m.name as string, flavor: String(m.flavor ?? ''), size: typeof m.size === 'number' ? m.size : null }));
}

/** `clf (sklearn, 1.4 kB)`: a model as the badge's tooltip lists it. */
export function describeModel(model: Pick<IRunModel, 'name' | 'flavor' | 'size'>): string {
  const size = model.size === null ? '' : model.size >= 1e6 ? `${(model.size / 1e6).toFixed(1)} MB` : `${(model.size / 1e3).toFixed(1)} kB`;
  const details = [model.flavor, size].filter(Boolean).join(', ');
  return details ? `${model.name} (${details})` : model.name;
}
