// @ts-check
/**
 * Live updates over the project's websocket (/ws/projects/<id>/): when analysis finishes the new
 * suggestions appear; when someone else saves a change to the open image it is merged in and
 * announced. Reconnects with backoff; after a reconnect everything is re-read (events may have
 * been missed).
 */

/**
 * @typedef {{onEvent: (msg: any) => void, onReconnect: () => void, onState: (connected: boolean) => void}} ProjectHandlers
 * @typedef {{onImageEvent: (type: string, payload: any) => void, onReconnect: () => void,
 *   onState: (connected: boolean) => void}} LiveHandlers
 */

/**
 * Every event of a project (the viewer's and the project page's connection).
 * @param {number} projectId
 * @param {ProjectHandlers} handlers
 * @returns {{close: () => void}}
 */
export function connectProject(projectId, handlers) {
  let closed = false;
  let failures = 0;
  let everConnected = false;
  /** @type {WebSocket|null} */
  let ws = null;

  function open() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws/projects/${projectId}/`);
    } catch {
      retry();
      return;
    }
    ws.onopen = () => {
      failures = 0;
      handlers.onState(true);
      if (everConnected) handlers.onReconnect();
      everConnected = true;
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (msg && typeof msg === "object") handlers.onEvent(msg);
    };
    ws.onclose = () => {
      handlers.onState(false);
      retry();
    };
  }

  function retry() {
    if (closed) return;
    failures += 1;
    setTimeout(open, Math.min(1000 * 2 ** Math.min(failures - 1, 5), 30000));
  }

  open();
  return {
    close() {
      closed = true;
      ws?.close();
    },
  };
}

/**
 * The events of one image.
 * @param {number} projectId
 * @param {number} imageId
 * @param {LiveHandlers} handlers
 * @returns {{close: () => void}}
 */
export function connectLive(projectId, imageId, handlers) {
  return connectProject(projectId, {
    onEvent: (msg) => {
      // Messages are {"type", "project", ...payload}; tolerate a nested "payload" too.
      const payload = msg.payload ?? msg;
      if (Number(payload.image) === imageId) handlers.onImageEvent(String(msg.type), payload);
    },
    onReconnect: handlers.onReconnect,
    onState: handlers.onState,
  });
}
