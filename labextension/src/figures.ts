/**
 * Figures side by side: for each cell that displayed one, a row with every run's version.
 * Images are shown as they are; Vega-Lite, Vega and plotly charts are redrawn from their
 * saved specs by JupyterLab's own renderers (those the notebook used: lazily, when scrolled
 * into view); a chart JupyterLab cannot draw here (Bokeh without its extension) is a clear
 * placeholder with a link to its file. Click a figure to enlarge it; in the enlarged view
 * the arrow keys flip between the runs' versions of that same figure.
 */
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { FigureKind, chartMime, figureKind, runHeading } from './comparison';
import { h, swatch } from './dom';
import { cellName, runColor } from './format';
import { ICompareRun, IComparison, IFigureFile, IFigureGroup, IRunName } from './tokens';

export interface IFigureOptions {
  /** URL of a run's artifact (served by the server extension). */
  artifactUrl(runId: string, path: string): string;
  /** A run's artifact parsed as JSON. */
  fetchJson(runId: string, path: string): Promise<unknown>;
  rendermime: IRenderMimeRegistry | null;
}

/** "cell 4 · figure 1" (the cell's position, as everywhere else). */
export function groupTitle(group: IFigureGroup): string {
  if (group.cell_id === null) {
    return group.key;
  }
  return `${cellName(group.index, group.cell_id)} · figure ${(group.n ?? 0) + 1}`;
}

const KIND_NAMES: Record<FigureKind, string> = {
  image: 'image',
  'vega-lite': 'Vega-Lite chart',
  vega: 'Vega chart',
  plotly: 'plotly chart',
  bokeh: 'Bokeh chart',
  html: 'HTML figure',
  other: 'file'
};

export class FigureGallery implements IDisposable {
  readonly node: HTMLElement;
  private _cmp: IComparison;
  private _names: Map<string, IRunName>;
  private _options: IFigureOptions;
  private _widgets = new Set<Widget>();
  private _observer: IntersectionObserver;
  private _lightbox: HTMLElement | null = null;
  private _lightboxWidget: Widget | null = null;
  private _disposed = false;

  constructor(cmp: IComparison, names: Map<string, IRunName>, options: IFigureOptions) {
    this._cmp = cmp;
    this._names = names;
    this._options = options;
    this._observer = new IntersectionObserver(entries => this._onVisible(entries), { rootMargin: '200px' });
    this.node = h(
      'div',
      { class: 'nbtrack-figures' },
      ...cmp.figures.map((group, g) =>
        h(
          'div',
          { class: 'nbtrack-figure-group', 'data-key': group.key },
          h('h4', { title: group.cell_id ? `cell id ${group.cell_id}` : '' }, groupTitle(group)),
          h(
            'div',
            { class: 'nbtrack-figure-row', style: `--nbtrack-columns:${cmp.runs.length}` },
            ...cmp.runs.map((run, r) => this._figure(group, g, run, r))
          )
        )
      )
    );
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._observer.disconnect();
    this._closeLightbox();
    this._widgets.forEach(w => w.dispose());
    this._widgets.clear();
  }

  private _latest(group: IFigureGroup, run: ICompareRun): IFigureFile | null {
    const files = group.runs[run.run_id] ?? [];
    return files.length ? files[files.length - 1] : null;
  }

  private _figure(group: IFigureGroup, g: number, run: ICompareRun, r: number): HTMLElement {
    const file = this._latest(group, run);
    const heading = runHeading(run, this._names);
    const caption = h('figcaption', { title: heading.full }, swatch(runColor(r)), heading.short);
    if (!file) {
      return h('figure', { class: 'nbtrack-figure nbtrack-figure-none', 'data-run-id': run.run_id }, h('div', { class: 'nbtrack-missing' }, 'no figure'), caption);
    }
    const body = this._body(file, run, false);
    const node = h(
      'figure',
      {
        class: 'nbtrack-figure',
        'data-run-id': run.run_id,
        'data-kind': figureKind(file.ext),
        tabindex: '0',
        title: `${heading.full}\n${file.path}\nclick to enlarge`
      },
      body,
      caption
    );
    node.addEventListener('click', event => {
      if (!(event.target as HTMLElement).closest('a')) {
        this.open(g, r);
      }
    });
    node.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.open(g, r);
      }
    });
    return node;
  }

  /** What shows a figure file: an image, a chart host (drawn when visible), or a placeholder. */
  private _body(file: IFigureFile, run: ICompareRun, large: boolean): HTMLElement {
    const url = this._options.artifactUrl(run.run_id, file.path);
    const kind = figureKind(file.ext);
    if (kind === 'image') {
      return h('img', { src: url, alt: `${runHeading(run, this._names).short}: ${file.path}`, loading: large ? 'eager' : 'lazy' });
    }
    if (this._canDraw(kind)) {
      const host = h('div', { class: 'nbtrack-figure-chart', 'data-kind': kind }, h('span', { class: 'nbtrack-muted' }, `loading ${KIND_NAMES[kind]}…`));
      host.dataset.runId = run.run_id;
      host.dataset.path = file.path;
      if (large) {
        requestAnimationFrame(() => void this._draw(host, kind, run.run_id, file.path, true));
      } else {
        this._observer.observe(host);
      }
      return host;
    }
    return placeholder(kind, file, url);
  }

  private _canDraw(kind: FigureKind): boolean {
    const mimes = this._options.rendermime?.mimeTypes ?? [];
    if (kind === 'plotly') {
      return mimes.includes('application/vnd.plotly.v1+json');
    }
    if (kind === 'vega-lite' || kind === 'vega') {
      return mimes.some(m => m.startsWith(`application/vnd.${kind === 'vega' ? 'vega' : 'vegalite'}.v`));
    }
    return false;
  }

  private _onVisible(entries: IntersectionObserverEntry[]): void {
    for (const entry of entries) {
      if (!entry.isIntersecting) {
        continue;
      }
      const host = entry.target as HTMLElement;
      this._observer.unobserve(host);
      void this._draw(host, host.dataset.kind as FigureKind, host.dataset.runId!, host.dataset.path!, false);
    }
  }

  private async _draw(host: HTMLElement, kind: FigureKind, runId: string, path: string, large: boolean): Promise<void> {
    const rendermime = this._options.rendermime;
    try {
      let spec = (await this._options.fetchJson(runId, path)) as Record<string, unknown>;
      if (kind === 'plotly') {
        // plotly fills its container's width, too narrow in a run's column: draw it at a
        // readable size (the enlarged view: the room there is), then scale it to fit.
        const width = large ? Math.max(480, host.clientWidth - 16) : 480;
        const layout = { ...((spec.layout as object) ?? {}), width, height: Math.round(width * 0.7), autosize: false };
        spec = { ...spec, layout };
      }
      const mime = rendermime ? chartMime(kind, spec as { $schema?: string }, [...rendermime.mimeTypes]) : null;
      if (!rendermime || !mime || this._disposed || !host.isConnected) {
        return;
      }
      const renderer = rendermime.createRenderer(mime);
      renderer.addClass('nbtrack-chart-renderer');
      host.replaceChildren();
      Widget.attach(renderer, host);
      if (large) {
        this._lightboxWidget = renderer;
      } else {
        this._widgets.add(renderer);
      }
      await renderer.renderModel(new MimeModel({ data: { [mime]: spec as never }, trusted: false }));
      host.classList.add('nbtrack-drawn');
      fitWidth(renderer.node, host);
    } catch (error) {
      host.replaceChildren(
        h('span', { class: 'nbtrack-error' }, `cannot draw this ${KIND_NAMES[kind]}: ${error instanceof Error ? error.message : String(error)}`)
      );
    }
  }

  /** Enlarge the figure of group `g` for run `r`; ←/→ flip between runs, Esc closes. */
  open(g: number, r: number): void {
    const group = this._cmp.figures[g];
    const runs = this._cmp.runs.filter(run => this._latest(group, run) !== null);
    if (!runs.length) {
      return;
    }
    const wanted = this._cmp.runs[r];
    const at = Math.max(0, runs.indexOf(wanted));
    this._closeLightbox();
    const run = runs[at];
    const file = this._latest(group, run)!;
    const heading = runHeading(run, this._names);
    const index = this._cmp.runs.indexOf(run);
    const flip = (delta: number) => this.open(g, this._cmp.runs.indexOf(runs[(at + delta + runs.length) % runs.length]));
    const prev = h('button', { type: 'button', class: 'nbtrack-lightbox-prev', title: 'previous run (←)' }, '‹');
    const next = h('button', { type: 'button', class: 'nbtrack-lightbox-next', title: 'next run (→)' }, '›');
    const close = h('button', { type: 'button', class: 'nbtrack-lightbox-close', title: 'close (Esc)' }, '✕');
    prev.addEventListener('click', () => flip(-1));
    next.addEventListener('click', () => flip(1));
    close.addEventListener('click', () => this._closeLightbox());
    const box = h(
      'div',
      { class: 'nbtrack-lightbox', role: 'dialog', 'aria-modal': 'true', tabindex: '-1', 'data-run-id': run.run_id },
      h(
        'div',
        { class: 'nbtrack-lightbox-bar' },
        h(
          'span',
          { class: 'nbtrack-lightbox-caption', title: heading.full },
          swatch(runColor(index)),
          `${heading.full.split(' · ')[0]} · ${groupTitle(group)} · ${at + 1} of ${runs.length}`
        ),
        close
      ),
      h('div', { class: 'nbtrack-lightbox-body' }, prev, h('div', { class: 'nbtrack-lightbox-figure' }, this._body(file, run, true)), next)
    );
    box.addEventListener('keydown', event => {
      if (event.key === 'ArrowRight' || event.key === 'ArrowDown') {
        event.preventDefault();
        flip(1);
      } else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') {
        event.preventDefault();
        flip(-1);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        this._closeLightbox();
      }
    });
    box.addEventListener('click', event => {
      if (event.target === box) {
        this._closeLightbox();
      }
    });
    this._lightbox = box;
    this.node.append(box);
    box.focus();
  }

  private _closeLightbox(): void {
    this._lightboxWidget?.dispose();
    this._lightboxWidget = null;
    this._lightbox?.remove();
    this._lightbox = null;
  }
}

/**
 * Charts draw at the size their spec asks (plotly: 700 px wide), wider than a run's
 * column: scale the drawing down to the column, keeping its proportions (CSS zoom, so
 * the layout shrinks too). Charts render asynchronously, so look again once they settle.
 */
function fitWidth(node: HTMLElement, host: HTMLElement): void {
  const fit = (): void => {
    const drawn = [...node.querySelectorAll('svg, canvas')].map(e => e.getBoundingClientRect().width / (Number(node.style.zoom) || 1));
    const natural = Math.max(node.scrollWidth, ...drawn);
    const room = host.clientWidth - 4;
    node.style.zoom = natural > room && room > 0 ? String(room / natural) : '';
  };
  fit();
  let timer = 0;
  const watch = new MutationObserver(() => {
    window.clearTimeout(timer);
    timer = window.setTimeout(fit, 100);
  });
  watch.observe(node, { childList: true, subtree: true });
  window.setTimeout(() => watch.disconnect(), 15000);
}

function placeholder(kind: FigureKind, file: IFigureFile, url: string): HTMLElement {
  const why =
    kind === 'bokeh'
      ? 'JupyterLab here has no Bokeh renderer (the jupyter_bokeh extension draws these).'
      : kind === 'plotly'
        ? 'JupyterLab here has no plotly renderer (pip install plotly brings jupyterlab-plotly).'
        : kind === 'html'
          ? 'An HTML figure runs scripts, which the panel does not do.'
          : 'The panel shows images and charts only.';
  return h(
    'div',
    { class: 'nbtrack-figure-placeholder', 'data-kind': kind },
    h('strong', {}, KIND_NAMES[kind]),
    h('span', { class: 'nbtrack-muted' }, why),
    h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', download: file.path.split('/').pop() }, `download ${file.path.split('/').pop()}`)
  );
}
