import { describe, expect, it } from 'vitest';

import { retrainMark, retrainTriggers } from '../src/retrain';

const trigger = JSON.stringify([
  { table: '/home/ann/proj/data/train', label: 'data/train', champion: 3, current: 4 }
]);

describe('retrainTriggers', () => {
  it('reads the inputs that moved from the run row column', () => {
    expect(retrainTriggers(trigger)).toEqual([
      { table: '/home/ann/proj/data/train', label: 'data/train', champion: 3, current: 4 }
    ]);
  });

  it('names a table without a label by its table and tolerates what it cannot read', () => {
    expect(retrainTriggers([{ table: 'main.sales.orders', current: 12 }])).toEqual([
      { table: 'main.sales.orders', label: 'main.sales.orders', champion: null, current: 12 }
    ]);
    expect(retrainTriggers('')).toEqual([]);
    expect(retrainTriggers('{not json')).toEqual([]);
    expect(retrainTriggers(null)).toEqual([]);
    expect(retrainTriggers([{ label: 'no table' }, 7])).toEqual([]);
  });
});

describe('retrainMark', () => {
  it('marks a retrain with the input version that triggered it, the champion on hover', () => {
    expect(retrainMark({ retrain_of: '0123456789abcdef0123456789abcdef', retrain_trigger: trigger })).toEqual({
      text: '⟳ data/train v4',
      title: 'retrain of run 01234567\nnew data: data/train v4 (the champion read v3)'
    });
  });

  it('counts further inputs that moved', () => {
    const two = JSON.stringify([
      { table: '/p/data/train', label: 'data/train', champion: 3, current: 4 },
      { table: '/p/data/labels', label: 'data/labels', champion: 7, current: 9 }
    ]);
    const mark = retrainMark({ retrain_of: 'abcdef0123456789', retrain_trigger: two });
    expect(mark?.text).toBe('⟳ data/train v4 +1');
    expect(mark?.title).toBe(
      'retrain of run abcdef01\nnew data: data/train v4 (the champion read v3), data/labels v9 (the champion read v7)'
    );
  });

  it('leaves other runs unmarked, and a retrain without a readable trigger plain', () => {
    expect(retrainMark({ retrain_of: '', retrain_trigger: '' })).toBeNull();
    expect(retrainMark({})).toBeNull();
    expect(retrainMark({ retrain_of: 'abcdef0123456789', retrain_trigger: '' })).toEqual({
      text: '⟳',
      title: 'retrain of run abcdef01'
    });
  });
});
