import { describe, expect, it } from 'vitest';

import { compileFilter, distance, exampleFilter, explainNoMatch, parseFilter, roundUp } from '../src/filter';
import { notebookRuns, run } from './fixtures';

const numbers = (text: string) => {
  const runs = notebookRuns();
  const filter = compileFilter(text, runs);
  return runs.filter(r => filter.test(r)).map(r => r.number);
};

describe('parseFilter', () => {
  it('reads comparisons, lists and words', () => {
    expect(parseFilter('test_acc>0.95 lr=0.1, status=failed max_depth in 2,3 baseline').clauses).toEqual([
      { text: 'test_acc>0.95', key: 'test_acc', op: '>', values: ['0.95'] },
      { text: 'lr=0.1', key: 'lr', op: '=', values: ['0.1'] },
      { text: 'status=failed', key: 'status', op: '=', values: ['failed'] },
      { text: 'max_depth in 2,3', key: 'max_depth', op: 'in', values: ['2', '3'] },
      { text: 'baseline', word: 'baseline' }
    ]);
  });

  it('accepts spaces around operators and in lists, quotes, and "and"', () => {
    const { clauses } = parseFilter('lr >= 0.01 and max_depth in 2, 3 name~"my run"');
    expect(clauses.map(c => [c.key, c.op, c.values])).toEqual([
      ['lr', '>=', ['0.01']],
      ['max_depth', 'in', ['2', '3']],
      ['name', '~', ['my run']]
    ]);
  });

  it('never throws on half-typed text', () => {
    for (const text of ['lr=', '>', 'max_depth in', '"unclosed', ',,,']) {
      expect(() => parseFilter(text)).not.toThrow();
    }
  });
});

describe('compileFilter', () => {
  it('compares metrics as numbers', () => {
    expect(numbers('test_acc>0.95')).toEqual([2]);
    expect(numbers('test_acc>=0.91')).toEqual([1, 2]);
    expect(numbers('val_loss<0.25')).toEqual([2]);
  });

  it('matches params by value, numbers by number', () => {
    expect(numbers('lr=0.1')).toEqual([1]);
    expect(numbers('lr=1e-1')).toEqual([1]);
    expect(numbers('lr=1.0')).toEqual([3]);
    expect(numbers('max_depth in 2,3')).toEqual([1, 2]);
    expect(numbers('max_depth!=2')).toEqual([2, 3]);
  });

  it('matches status without regard to case, and plain words anywhere', () => {
    expect(numbers('status=failed')).toEqual([3]);
    expect(numbers('status=FINISHED')).toEqual([1, 2]);
    expect(numbers('max_depth=5')).toEqual([3]);
    expect(numbers('#2')).toEqual([2]);
    expect(numbers('run-')).toEqual([1, 2, 3]);
  });

  it('needs every clause', () => {
    expect(numbers('lr=0.1 status=failed')).toEqual([]);
    expect(numbers('max_depth in 2,3 test_acc>0.95')).toEqual([2]);
  });

  it('never matches a missing or NaN value', () => {
    expect(numbers('val_loss>0')).toEqual([1, 2]);
    expect(numbers('test_acc<1')).toEqual([1, 2]);
  });

  it('says which column does not exist, and suggests a close one', () => {
    const filter = compileFilter('tst_acc>0.9', notebookRuns());
    expect(filter.errors).toEqual(['No column "tst_acc": did you mean test_acc?']);
    expect(notebookRuns().some(r => filter.test(r))).toBe(false);
  });

  it('reads params.x and metrics.y when a name is both', () => {
    const runs = [run({ score: 'high' }, { score: 0.9 }), run({ score: 'low' }, { score: 0.2 })];
    const pick = (text: string) => runs.filter(r => compileFilter(text, runs).test(r)).map(r => r.params.score);
    expect(pick('score>0.5')).toEqual(['high']);
    expect(pick('score=low')).toEqual(['low']);
    expect(pick('metrics.score<0.5')).toEqual(['low']);
    expect(pick('params.score=high')).toEqual(['high']);
  });
});

describe('explainNoMatch', () => {
  const runs = notebookRuns();

  it('gives the extreme value a bound missed', () => {
    expect(explainNoMatch('test_acc>0.99', runs)).toBe('No run has test_acc>0.99: the highest test_acc is 0.96.');
    expect(explainNoMatch('val_loss<0.1', runs)).toBe('No run has val_loss<0.1: the lowest val_loss is 0.2.');
  });

  it('lists the values a param takes', () => {
    expect(explainNoMatch('lr=0.5', runs)).toBe('No run has lr=0.5: lr is one of 0.1, 0.01, 1.');
    expect(explainNoMatch('status=running', runs)).toBe('No run has status=running: status is one of FINISHED, FAILED.');
  });

  it('says when each part matches but not all together', () => {
    expect(explainNoMatch('lr=0.1 status=failed', runs)).toBe('Each part matches some runs, but no run matches all of them.');
  });
});

describe('exampleFilter', () => {
  it('is valid for the notebook and matches a run', () => {
    const runs = notebookRuns().reverse(); // newest first, as listed
    const example = exampleFilter(runs, 'test_acc');
    const filter = compileFilter(example, runs);
    expect(filter.errors).toEqual([]);
    expect(runs.filter(r => filter.test(r)).length).toBeGreaterThan(0);
  });

  it('skips a metric that is not a number and params that need quotes', () => {
    const runs = [run({ note: 'two words' }, { val_loss: 'nan' }), run({ lr: '0.1' }, { val_loss: 0.0712 })];
    expect(exampleFilter(runs, 'val_loss')).toBe('lr=0.1 val_loss<=0.072');
  });

  it('is empty without runs', () => {
    expect(exampleFilter([])).toBe('');
  });
});

describe('helpers', () => {
  it('rounds a bound up to 2 significant digits', () => {
    expect(roundUp(0.0709)).toBe('0.071');
    expect(roundUp(0.5)).toBe('0.5');
    expect(roundUp(12345)).toBe('13000');
    expect(roundUp(-0.5)).toBe('-0.5');
  });

  it('measures edit distance', () => {
    expect(distance('tst_acc', 'test_acc')).toBe(1);
    expect(distance('lr', 'lr')).toBe(0);
  });
});
