/**
 * nbtrack's JupyterLab extension: a sidebar with the runs of the active notebook, a
 * comparison and a sweep view in the main area beside it, and the kernel-side notebook path.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, IFrame, IThemeManager } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ComparisonWidget } from './compare';
import { JobTracker } from './jobs';
import { trackNotebookPath } from './kernel';
import { NbtrackPanel } from './panel';
import { registerPlugin } from './register';
import { apiUrl, checkServer, describeError } from './request';
import { SweepWidget } from './sweep';
import { INbtrackPanel, IRunAction } from './tokens';

export * from './tokens';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3zm4 11 4-5 3 3 5-7 1.6 1.2-6.4 9-3-3-2.7 3.4z"/>
</svg>`;

export const nbtrackIcon = new LabIcon({ name: 'nbtrack:runs', svgstr: ICON_SVG });

const OPEN_COMMAND = 'nbtrack:open-panel';

const panelPlugin: JupyterFrontEndPlugin<INbtrackPanel> = {
  id: 'nbtrack:panel',
  description: 'Sidebar: runs of the active notebook; comparison and sweep view beside the notebook.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette, IRenderMimeRegistry, IThemeManager],
  provides: INbtrackPanel,
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    rendermime: IRenderMimeRegistry | null,
    themes: IThemeManager | null
  ): INbtrackPanel => {
    const jobs = new JobTracker();
    const actions: IRunAction[] = [];
    let comparison: ComparisonWidget | null = null;
    let sweep: SweepWidget | null = null;

    /** Beside the notebook (split right) the first time; where the user moved it after. */
    const place = (widget: Widget): void => {
      if (widget.isAttached) {
        shell.activateById(widget.id);
        return;
      }
      const sibling = [comparison, sweep].find(w => w && w !== widget && w.isAttached && !w.isDisposed);
      if (sibling) {
        shell.add(widget, 'main', { mode: 'tab-after', ref: sibling.id });
      } else {
        shell.add(widget, 'main', { mode: 'split-right', ref: notebooks.currentWidget?.id ?? null });
      }
      shell.activateById(widget.id);
    };

    const panel: NbtrackPanel = new NbtrackPanel({
      jobs,
      addRunAction: action => actions.push(action),
      compare: (ids, notebook) => {
        if (!comparison || comparison.isDisposed) {
          comparison = new ComparisonWidget({
            rendermime,
            jobs,
            actions: () => actions,
            rootDir: () => panel.server?.root_dir ?? null,
            names: () => panel.names(),
            openPath: path => void app.commands.execute('docmanager:open', { path }),
            openOutput: (runId, nb, title) => {
              const frame = new IFrame({ sandbox: [] });
              frame.id = `nbtrack-output-${runId}`;
              frame.url = apiUrl(['output', runId], { notebook: nb });
              frame.title.label = title;
              frame.title.caption = `papermill's output notebook of run ${runId}`;
              frame.title.closable = true;
              frame.addClass('nbtrack-output');
              place(frame);
            }
          });
        }
        place(comparison);
        void comparison.load(ids, notebook);
      },
      openSweep: (sweepId, runs, metric) => {
        if (!sweep || sweep.isDisposed) {
          sweep = new SweepWidget({ compare: ids => panel.compareRuns(ids) });
        }
        place(sweep);
        sweep.showSweep(sweepId, runs, metric);
      },
      runsChanged: current => {
        if (comparison && !comparison.isDisposed && comparison.notebook === current.notebook) {
          comparison.updateNames();
        }
        if (sweep && !sweep.isDisposed && sweep.sweepId) {
          const runs = current.runs.filter(r => r.sweep_id === sweep!.sweepId && r.parent_run_id);
          if (runs.length) {
            sweep.showSweep(sweep.sweepId, runs, current.metric);
          }
        }
      }
    });
    panel.title.icon = nbtrackIcon;
    shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, 'nbtrack-panel');
    panel.disposed.connect(() => jobs.dispose());
    themes?.themeChanged.connect(() => comparison?.redraw());

    checkServer().then(
      info => panel.setServer(info),
      error => panel.setServer(null, describeError(error))
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
      label: 'nbtrack: show the runs of this notebook',
      caption: 'Open the nbtrack sidebar: runs of the active notebook, compare, re-run',
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

export default [panelPlugin, kernelPathPlugin, registerPlugin];
