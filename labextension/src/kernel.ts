/**
 * Tell a notebook's Python kernel where its notebook file is, so capture names
 * the run after the real file (session paths are not always the file path).
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

/** The Python statement that sets NBTRACK_NOTEBOOK (read by capture before each cell). */
export function notebookPathCode(absolutePath: string): string {
  // A JSON string literal is a valid Python string literal: quotes and backslashes stay safe.
  return `import os as _o; _o.environ["NBTRACK_NOTEBOOK"] = ${JSON.stringify(absolutePath)}; del _o`;
}

export function absolutePath(rootDir: string, localPath: string): string {
  const root = rootDir.replace(/[\\/]+$/, '');
  return `${root}/${localPath.replace(/^\/+/, '')}`;
}

async function isPython(kernel: Kernel.IKernelConnection): Promise<boolean> {
  try {
    const info = await kernel.info;
    return (info?.language_info?.name ?? '').toLowerCase() === 'python';
  } catch {
    return false;
  }
}

/** Send the path now and again whenever the kernel changes, restarts or the file is renamed. */
export function trackNotebookPath(panel: NotebookPanel, rootDir: string): void {
  const { sessionContext, context } = panel;
  let sentTo: string | null = null; // "<kernel id>:<path>" last told

  const send = async (force = false): Promise<void> => {
    const kernel = sessionContext.session?.kernel;
    if (!kernel || kernel.status === 'dead') {
      return;
    }
    const path = absolutePath(rootDir, context.localPath);
    const key = `${kernel.id}:${path}`;
    if ((!force && sentTo === key) || !(await isPython(kernel))) {
      return;
    }
    sentTo = key;
    kernel.requestExecute({ code: notebookPathCode(path), silent: true, store_history: false }, true);
  };

  const onStatus = (_: unknown, status: Kernel.Status): void => {
    if (status === 'restarting' || status === 'autorestarting') {
      sentTo = null; // a restarted kernel forgot its environment
    } else if (status === 'idle' && sentTo === null) {
      void send();
    }
  };

  void sessionContext.ready.then(() => send());
  sessionContext.kernelChanged.connect(() => {
    sentTo = null;
    void sessionContext.ready.then(() => send());
  });
  sessionContext.statusChanged.connect(onStatus);
  context.pathChanged.connect(() => void send(true));
  panel.disposed.connect(() => {
    sessionContext.statusChanged.disconnect(onStatus);
  });
}
