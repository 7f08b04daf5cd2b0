/**
 * The one way the panel talks to the server: `requestAPI`, with typed errors.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IVersionInfo } from './tokens';

declare function require(path: string): { version: string };

/** This panel's version: the server extension must report the same one. */
export const VERSION: string = require('../package.json').version;

const API = 'nbtrack/api';

/** The server answered with an error status; `message` is its JSON `message`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The server has no nbtrack routes: the Python part is not installed or not enabled. */
export class ServerExtensionMissing extends Error {
  constructor() {
    super(
      'The nbtrack server extension is not running in this Jupyter server. ' +
        `Install it in the server's Python environment with \`pip install "nbtrack==${VERSION}"\`, ` +
        'then restart JupyterLab (`jupyter server extension list` should show nbtrack.server enabled).'
    );
    this.name = 'ServerExtensionMissing';
  }
}

/** The server part answers, but with another version than this panel. */
export class VersionMismatch extends Error {
  constructor(readonly server: string) {
    super(
      `The nbtrack panel is version ${VERSION} but the server extension is ${server}. ` +
        `Install matching versions: \`pip install "nbtrack==${VERSION}"\` in the Jupyter server's ` +
        'environment, then restart JupyterLab and reload this page.'
    );
    this.name = 'VersionMismatch';
  }
}

/** The URL of an nbtrack endpoint, e.g. `apiUrl('artifact', id, path)`. */
export function apiUrl(
  parts: string[],
  query: Record<string, string | null | undefined> = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  const path = URLExt.join(
    settings.baseUrl,
    API,
    ...parts.map(p => p.split('/').map(encodeURIComponent).join('/'))
  );
  const search = Object.entries(query)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v as string)}`)
    .join('&');
  return search ? `${path}?${search}` : path;
}

/** Call an nbtrack endpoint; resolves to its JSON, rejects with `ApiError` or a network error. */
export async function requestAPI<T>(
  parts: string[],
  query: Record<string, string | null | undefined> = {},
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = apiUrl(parts, query, settings);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const body = (data ?? {}) as { message?: unknown; reason?: unknown };
    const message = typeof body.message === 'string' ? body.message : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, typeof body.reason === 'string' ? body.reason : null);
  }
  return data as T;
}

/**
 * What went wrong, in words a user can act on. A network failure ("Failed to fetch") says
 * the server cannot be reached, not just that a request failed.
 */
export function describeError(error: unknown): string {
  if (error instanceof ApiError || error instanceof ServerExtensionMissing || error instanceof VersionMismatch) {
    return error.message;
  }
  if (error instanceof ServerConnection.NetworkError || error instanceof TypeError) {
    const server = ServerConnection.makeSettings().baseUrl;
    const detail = error.message ? ` (${error.message})` : '';
    return `Cannot reach the Jupyter server at ${server}${detail}: is it still running, and is this machine online?`;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

let handshake: Promise<IVersionInfo> | null = null;

/** The version handshake, done once per page: the server's info, or the error saying what to install. */
export function checkServer(): Promise<IVersionInfo> {
  if (!handshake) {
    handshake = fetchServerInfo();
    handshake.catch(() => (handshake = null)); // a later call tries again
  }
  return handshake;
}

async function fetchServerInfo(): Promise<IVersionInfo> {
  let info: IVersionInfo;
  try {
    info = await requestAPI<IVersionInfo>(['version']);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      throw new ServerExtensionMissing();
    }
    throw error;
  }
  if (!info || info.version !== VERSION) {
    throw new VersionMismatch(info?.version ?? 'unknown');
  }
  return info;
}
