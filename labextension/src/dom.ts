/**
 * Small DOM helpers. Text always goes in as text nodes, never as HTML, so run names,
 * params, errors and cell sources cannot inject markup.
 */

export type Child = Node | string | number | null | undefined | false;

/** `h('td', {class: 'x', title: 't'}, 'text', child)`: an element with text-only strings. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(typeof child === 'number' ? String(child) : child);
  }
  return node;
}

/** A button that runs `onClick` (a JupyterLab-styled one unless `className` says otherwise). */
export function button(
  label: string,
  onClick: (event: MouseEvent) => void,
  attrs: Record<string, string | boolean | undefined> = {}
): HTMLButtonElement {
  const node = h('button', { type: 'button', class: 'jp-mod-styled', ...attrs }, label);
  node.addEventListener('click', onClick);
  return node;
}

/** A coloured square identifying a run in every view. */
export function swatch(color: string): HTMLSpanElement {
  return h('span', { class: 'nbtrack-swatch', style: `background:${color}`, 'aria-hidden': 'true' });
}

/** A run's status as a coloured dot (its name in words on hover and for screen readers). */
export function statusDot(status: string): HTMLSpanElement {
  const word = status.toLowerCase();
  return h('span', {
    class: `nbtrack-dot nbtrack-status-${word}`,
    title: word,
    role: 'img',
    'aria-label': word
  });
}
