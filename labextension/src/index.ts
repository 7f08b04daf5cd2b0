/**
 * nbtrack's JupyterLab extension: a side panel with the runs of the active
 * notebook (compare, re-run), and the kernel-side notebook path.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { trackNotebookPath } from './kernel';
import { NbtrackPanel } from './panel';
import { checkServer } from './request';
import { INbtrackPanel } from './tokens';

export * from './tokens';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3zm4 11 4-5 3 3 5-7 1.6 1.2-6.4 9-3-3-2.7 3.4z"/>
</svg>`;

export const nbtrackIcon = new LabIcon({ name: 'nbtrack:runs', svgstr: ICON_SVG });

const OPEN_COMMAND = 'nbtrack:open-panel';

const panelPlugin: JupyterFrontEndPlugin<INbtrackPanel> = {
  id: 'nbtrack:panel',
  description: 'Side panel: runs of the active notebook, comparison and re-run.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  provides: INbtrackPanel,
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): INbtrackPanel => {
    const panel = new NbtrackPanel();
    panel.title.icon = nbtrackIcon;
    shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, 'nbtrack-panel');

    checkServer().then(
      info => panel.setServer(info),
      error => panel.setServer(null, error instanceof Error ? error.message : String(error))
    );

    const follow = (current: NotebookPanel | null): void => {
      void panel.showNotebook(current ? current.context.localPath : null);
    };
    notebooks.currentChanged.connect((_, current) => follow(current));
    notebooks.widgetAdded.connect((_, added) =>
      added.context.pathChanged.connect(() => {
        if (notebooks.currentWidget === added) {
          follow(added);
        }
      })
    );
    follow(notebooks.currentWidget);

    NotebookActions.executed.connect((_, { notebook }) => {
      if (notebooks.currentWidget?.content === notebook) {
        panel.scheduleRefresh();
      }
    });

    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Show nbtrack runs of this notebook',
      icon: nbtrackIcon,
      execute: () => shell.activateById(panel.id)
    });
    palette?.addItem({ command: OPEN_COMMAND, category: 'nbtrack' });
    return panel;
  }
};

const kernelPathPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbtrack:kernel-path',
  description: "Tells each notebook's Python kernel its notebook path (NBTRACK_NOTEBOOK).",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_: JupyterFrontEnd, notebooks: INotebookTracker): void => {
    const track = (panel: NotebookPanel): void => {
      checkServer().then(
        info => trackNotebookPath(panel, info.root_dir),
        () => undefined // the panel already says what to install
      );
    };
    notebooks.forEach(track);
    notebooks.widgetAdded.connect((_, panel) => track(panel));
  }
};

export default [panelPlugin, kernelPathPlugin];
