import { describe, expect, it } from 'vitest';

import { describeModel, describeRegistration, registerBody, rowModels } from '../src/registration';
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

describe('rowModels', () => {
  it("reads a run row's models column (the nbtrack.models tag), and nothing from anything else", () => {
    const tag = JSON.stringify([{ name: 'clf', flavor: 'sklearn', size: 1420 }, { name: 'net', flavor: 'pytorch', size: 2.5e6 }]);
    expect(rowModels(tag).map(describeModel)).toEqual(['clf (sklearn, 1.4 kB)', 'net (pytorch, 2.5 MB)']);
    expect(rowModels('')).toEqual([]);
    expect(rowModels('not json')).toEqual([]);
    expect(rowModels(undefined)).toEqual([]);
    expect(rowModels([{ flavor: 'sklearn' }])).toEqual([]);
  });
});
