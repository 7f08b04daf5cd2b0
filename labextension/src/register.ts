/**
 * "Register model…" on a run of the comparison: its model into MLflow's Model Registry,
 * through POST /nbtrack/api/register (what `nbtrack register` does). Offered through the
 * panel's own extension point (`INbtrackPanel.addRunAction`), enabled for runs with a model.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { InputDialog } from '@jupyterlab/apputils';

import { describeRegistration, registerBody } from './registration';
import { requestAPI } from './request';
import { INbtrackPanel, IRegistration, IRunAction } from './tokens';

export function registerAction(): IRunAction {
  return {
    id: 'register',
    label: 'Register model…',
    caption: "register this run's model in MLflow's Model Registry",
    isEnabled: run => Boolean(run.models?.length),
    execute: async (run, report, notebook) => {
      const models = run.models ?? [];
      let model: string | null = models.length === 1 ? models[0].name : null;
      if (models.length > 1) {
        const choice = await InputDialog.getItem({
          title: 'Register a model',
          label: 'Which of the run\'s models?',
          items: models.map(m => m.name)
        });
        if (!choice.button.accept || !choice.value) {
          report('cancelled');
          return;
        }
        model = choice.value;
      }
      const answer = await InputDialog.getText({
        title: `Register ${model}`,
        label: 'Registered model name (a new version is added when it exists)',
        text: model ?? ''
      });
      if (!answer.button.accept || !answer.value?.trim()) {
        report('cancelled');
        return;
      }
      report(`registering ${model} as ${answer.value.trim()}…`);
      const done = await requestAPI<IRegistration>(['register'], {}, {
        method: 'POST',
        body: JSON.stringify(registerBody(run, answer.value, model, notebook))
      });
      report(describeRegistration(done), 'done');
    }
  };
}

export const registerPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbtrack:register',
  description: "Register a compared run's model in MLflow's Model Registry.",
  autoStart: true,
  requires: [INbtrackPanel],
  activate: (_: JupyterFrontEnd, panel: INbtrackPanel): void => panel.addRunAction(registerAction())
};
