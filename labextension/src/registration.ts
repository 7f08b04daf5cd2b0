/**
 * What registering a run's model sends and says (no DOM: unit-tested; the action that asks
 * for a name is `register.ts`).
 */
import { ICompareRun, IRegistration } from './tokens';

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
