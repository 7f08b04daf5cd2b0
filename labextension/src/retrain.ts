/**
 * Retrain runs (`nbtrack retrain`) in the run list: a ⟳ mark beside the name and the input version
 * that triggered the retrain, read from the run row's `retrain_of` and `retrain_trigger` columns
 * (the tags nbtrack.retrain_of and nbtrack.retrain.trigger).
 */
import { IRunRow } from './tokens';

/** One input whose newer version started a retrain. */
export interface IRetrainTrigger {
  /** The table as the run recorded it (a path or URI, or a catalog name). */
  table: string;
  /** How a user names it: the path inside the project (`data/train`). */
  label: string;
  /** The version the champion read, and the version the retrain read. */
  champion: number | null;
  current: number | null;
}

/** The inputs that moved, from the run row's `retrain_trigger` JSON (empty when absent or unreadable). */
export function retrainTriggers(value: unknown): IRetrainTrigger[] {
  let items: unknown = value;
  if (typeof value === 'string') {
    try {
      items = value ? JSON.parse(value) : [];
    } catch {
      return [];
    }
  }
  if (!Array.isArray(items)) {
    return [];
  }
  const version = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return items
    .filter((t): t is Record<string, unknown> => typeof t === 'object' && t !== null && typeof t.table === 'string')
    .map(t => ({
      table: t.table as string,
      label: typeof t.label === 'string' && t.label ? t.label : (t.table as string),
      champion: version(t.champion),
      current: version(t.current)
    }));
}

/** `data/train v4`: an input at the version the retrain read. */
function atVersion(trigger: IRetrainTrigger): string {
  return trigger.current === null ? trigger.label : `${trigger.label} v${trigger.current}`;
}

/**
 * How the run list marks a retrain run (a line under its name): `⟳ data/train v4`, the input
 * version that triggered it (`+1` when more inputs moved), and a tooltip naming the champion and
 * every moved input with both versions. Null for other runs.
 */
export function retrainMark(run: Pick<IRunRow, 'retrain_of' | 'retrain_trigger'>): { text: string; title: string } | null {
  const champion = typeof run.retrain_of === 'string' ? run.retrain_of : '';
  if (!champion) {
    return null;
  }
  const triggers = retrainTriggers(run.retrain_trigger);
  const first = triggers.length ? ` ${atVersion(triggers[0])}` : '';
  const more = triggers.length > 1 ? ` +${triggers.length - 1}` : '';
  const moved = triggers.map(t => `${atVersion(t)}${t.champion === null ? '' : ` (the champion read v${t.champion})`}`);
  const title = [`retrain of run ${champion.slice(0, 8)}`, ...(moved.length ? [`new data: ${moved.join(', ')}`] : [])].join('\n');
  return { text: `⟳${first}${more}`, title };
}
