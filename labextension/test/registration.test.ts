import { describe, expect, it } from 'vitest';

import { describeRegistration, registerBody } from '../src/registration';
import { ICompareRun } from '../src/tokens';

const compared: ICompareRun = {
  run_id: 'abc123',
  run_name: 'bold-owl-3',
  label: 'bold-owl-3 (abc123)',
  experiment_id: '1',
  experiment_name: 'train.ipynb',
  status: 'FINISHED',
  start_time: null,
  end_time: null,
  duration_s: null,
  tags: {},
  models: [{ name: 'clf', flavor: 'sklearn', size: 1400, uri: 'runs:/abc123/clf' }]
};

describe('registerBody', () => {
  it('names the run, the registered model, the run\'s model and the notebook when known', () => {
    expect(registerBody(compared, ' churn ', 'clf', 'nbs/train.ipynb')).toEqual({
      run_id: 'abc123', name: 'churn', model: 'clf', notebook: 'nbs/train.ipynb'
    });
    expect(registerBody(compared, 'churn', null, null)).toEqual({ run_id: 'abc123', name: 'churn' });
  });
});

describe('describeRegistration', () => {
  it('says the version it made, or the one the model already was, with its aliases', () => {
    const done = { uri: 'models:/churn/2', name: 'churn', version: 2, run_id: 'r', model: 'clf', aliases: [], created: true };
    expect(describeRegistration(done)).toBe('clf → models:/churn/2');
    expect(describeRegistration({ ...done, created: false, aliases: ['champion'] })).toBe(
      'clf already is models:/churn/2 (@champion)'
    );
  });
});
