// order-events.js: the browser side of the order streams, one ES module with no build step.
//
//   import { subscribeToOrder, subscribeToOrders } from "/static/order-events.js";
//   const unsubscribe = subscribeToOrder(orderId, (event) => { ... });
//
// Every tab of the origin shares ONE connection: the account stream, GET /api/orders/events,
// which carries every order of the signed-in account. A SharedWorker (this same file, loaded
// as a module worker) holds it where the browser has SharedWorker; otherwise the tabs elect a
// leader with the Web Locks API and the leader passes the events on over a BroadcastChannel;
// where neither exists, each tab connects itself. When the tab holding the connection goes
// away, the next one takes over from the last event id it saw: the server replays what came
// after, and ids already seen are dropped, so nothing is missed or repeated.
//
// An order subscription joins the shared stream first, then reads the order's snapshot
// (GET /api/orders/<id>, with its history and `lastEventId`) and passes on the stream's
// updates of that order whose `eventId` is past the snapshot's; those that came while the
// snapshot was on its way wait in a buffer, and an account snapshot newer than it (a
// connection that started over) makes it read the order again. The connection renews tickets, resumes with the
// last event id, backs off with jitter, and counts what it goes through for operators
// (POST /api/client-events). README "The browser module" documents the API.

const ORDERS_API = "/api/orders";
const STREAM_URL = ORDERS_API + "/events";
const TICKET_URL = ORDERS_API + "/stream-ticket";
const BEACON_URL = "/api/client-events";
// Part of the worker's, the lock's and the channel's names: tabs running another version of
// this file never share a connection with this one (their messages could differ).
const PROTOCOL = "order-events/1";
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 60000;
const HEALTHY_AFTER_MS = 10000;
const REPORT_AFTER_MS = 10000;

const inWorker = typeof SharedWorkerGlobalScope === "function" && self instanceof SharedWorkerGlobalScope;
const inPage = typeof window === "object" && typeof document === "object";

// --- event ids: "<ms>-<seq>", compared as pairs of integers --------------------------------

/** Negative, zero or positive as event id `a` comes before, with or after `b` (null: before all). */
export function compareEventIds(a, b) {
  if (a === b) return 0;
  if (!a) return -1;
  if (!b) return 1;
  const [aMs, aSeq = 0] = String(a).split("-").map(Number);
  const [bMs, bSeq = 0] = String(b).split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}

function isAfter(a, b) {
  return compareEventIds(a, b) > 0;
}

// --- small parts ----------------------------------------------------------------------------

class SignedOut extends Error {}
class NotFound extends Error {}

/** Exponential, capped, with "equal jitter"; starts over only once things stayed healthy. */
class Backoff {
  constructor() {
    this.failures = 0;
    this.healthyTimer = null;
  }

  next() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.failures);
    this.failures += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // Only a stream that stays up resets it: one that opens and ends at once (an expiring
  // credential, a refusal) must not become a loop.
  healthy() {
    clearTimeout(this.healthyTimer);
    this.healthyTimer = setTimeout(() => { this.failures = 0; }, HEALTHY_AFTER_MS);
  }

  cancel() {
    clearTimeout(this.healthyTimer);
  }
}

function customerToken() {
  // A portal that keeps the customer's token in sessionStorage lends it for tickets and reads.
  try {
    return globalThis.sessionStorage ? sessionStorage.getItem("access_token") : null;
  } catch (error) {
    return null; // storage switched off
  }
}

/** Whether the page was given a credential (the cookie, or a portal's token), which has now
 * lapsed if the stream says signed-out; false for a visitor who never signed in. */
export function hadCredential(auth) {
  return auth === "cookie" || Boolean(customerToken());
}

function bearerHeaders(auth) {
  const token = auth === "ticket" ? customerToken() : null;
  return token ? { Authorization: "Bearer " + token } : {};
}

async function requestJson(url, auth, init = {}) {
  const response = await fetch(url, {
    credentials: "same-origin", ...init, headers: { Accept: "application/json", ...bearerHeaders(auth) },
  });
  if (response.status === 401 || response.status === 403) throw new SignedOut();
  if (response.status === 404) throw new NotFound();
  if (!response.ok) throw new Error(url + ": HTTP " + response.status);
  return response.json();
}

async function fetchTicket(auth) {
  const { ticket } = await requestJson(TICKET_URL, auth, { method: "POST" });
  health.ticket = ticket;
  return ticket;
}

// --- telling operators how the connection fares ----------------------------------------------
// Counts by reason, sent at most every REPORT_AFTER_MS and when the page goes away, with
// sendBeacon (it survives the page closing); nothing but the counts leaves the page. Whatever
// holds the connection notes; a SharedWorker (which has no sendBeacon) hands its notes to a tab.

const health = { noted: {}, timer: null, auth: "cookie", ticket: null };

function note(reason) {
  health.noted[reason] = (health.noted[reason] || 0) + 1;
  if (health.timer === null) health.timer = setTimeout(reportHealth, REPORT_AFTER_MS);
}

/** Send the counts noted so far now (the page does so by itself every 10 s and on `pagehide`). */
export function reportHealth() {
  clearTimeout(health.timer);
  health.timer = null;
  const events = Object.assign({}, health.noted);
  if (!Object.keys(events).length || !navigator.sendBeacon) return;
  for (const reason of Object.keys(health.noted)) delete health.noted[reason];
  // sendBeacon cannot set headers: the cookie goes by itself, a ticket goes in the query.
  const ticket = health.auth === "ticket" ? health.ticket : null;
  const query = ticket ? "?ticket=" + encodeURIComponent(ticket) : "";
  const body = new Blob([JSON.stringify({ events })], { type: "application/json" });
  navigator.sendBeacon(BEACON_URL + query, body);
}

/** The counts noted and not reported yet, by reason (diagnostics). */
export const healthNoted = health.noted;

// --- the connection: one EventSource on the account stream, wherever it runs ------------------
// In the SharedWorker, in the leader tab, or in a tab on its own. It tells the tabs it serves
// through `send`: {type: "status", state, cursor} (state: connecting, open, reconnecting,
// signed-out; cursor: its last account event id) and {type: "event", event, data, cursor}.

class AccountConnection {
  constructor({ auth, cursor = null, getTicket, send, note }) {
    Object.assign(this, { auth, cursor, getTicket, send, note });
    this.state = "idle";
    this.source = null;
    this.ticket = null;
    this.connections = 0;
    this.stopped = true;
    this.retryTimer = null;
    this.backoff = new Backoff();
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.closeSource();
    clearTimeout(this.retryTimer);
    this.backoff.cancel();
  }

  status() {
    return { type: "status", state: this.state, cursor: this.cursor };
  }

  setState(state) {
    this.state = state;
    this.send(this.status());
  }

  async connect() {
    if (this.stopped) return;
    const params = new URLSearchParams();
    if (this.auth === "ticket") {
      try {
        this.ticket = await this.getTicket();
      } catch (error) {
        if (error instanceof SignedOut) return this.signedOut();
        this.note("ticket-failed");
        return this.retryLater();
      }
      if (this.stopped) return;
      params.set("ticket", this.ticket);
    }
    // A new EventSource knows no id: the query says where to resume (the browser's own
    // reconnects send the Last-Event-ID header, which the server prefers).
    if (this.cursor) params.set("lastEventId", this.cursor);
    if (this.connections > 0) this.note("reconnect");
    this.connections += 1;
    const query = params.toString();
    const source = new EventSource(STREAM_URL + (query ? "?" + query : ""), { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.setState("open");
      this.backoff.healthy();
    };
    source.addEventListener("account.snapshot", (message) => this.onEvent(message));
    source.addEventListener("order.update", (message) => this.onEvent(message));
    source.addEventListener("stream.end", (message) => this.onStreamEnd(message));
    source.onerror = () => this.onError(source);
    this.setState("connecting");
  }

  onEvent(message) {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch (error) {
      return; // not ours to draw
    }
    if (message.lastEventId) this.cursor = message.lastEventId;
    this.send({ type: "event", event: message.type, data, cursor: this.cursor });
  }

  onStreamEnd(message) {
    let reason = null;
    try {
      reason = JSON.parse(message.data).reason;
    } catch (error) {
      // an ending without a reason: treat it as a restart
    }
    if (reason === "overloaded" || reason === "credential-expired") this.note(reason);
    if (reason !== "credential-expired") return; // a restart: the browser reconnects and resumes
    this.closeSource();
    // A fresh ticket, resuming after the last event seen. With a cookie, ask first whether the
    // session still stands (a portal may have renewed it).
    this.auth === "cookie" ? this.probeSession() : this.retryLater();
  }

  onError(source) {
    if (this.stopped || source !== this.source) return;
    this.note("eventsource-error");
    this.setState("reconnecting");
    // CONNECTING: the browser retries by itself. CLOSED: it gave up (an HTTP error answer).
    if (source.readyState === EventSource.CLOSED) {
      this.source = null;
      this.auth === "cookie" ? this.probeSession() : this.retryLater();
    }
  }

  async probeSession() {
    // With a cookie, a refusal usually means the session ended; ask once to tell.
    try {
      const response = await fetch(TICKET_URL, { method: "POST", credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) return this.signedOut();
    } catch (error) {
      // offline, or the server is down: just try again later
    }
    this.retryLater();
  }

  retryLater() {
    if (this.stopped) return;
    this.setState("reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.backoff.next());
  }

  signedOut() {
    this.stop();
    this.setState("signed-out");
  }

  closeSource() {
    if (this.source) this.source.close();
    this.source = null;
  }
}

// --- the tab's side: one hub per credential, fed by whichever transport holds the connection ---

class Hub {
  constructor(auth, scope) {
    this.auth = auth;
    this.scope = scope;
    this.listeners = new Set();
    this.state = null; // the connection's, as its holder last said
    this.cursor = null; // the last account event id this tab received
    this.transport = pickTransport(this);
  }

  add(listener) {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.transport.want(true);
    else if (this.state) listener(this.status());
  }

  remove(listener) {
    if (!this.listeners.delete(listener) || this.listeners.size) return;
    this.transport.want(false);
    this.cursor = null;
  }

  status() {
    return { type: "status", state: this.state, cursor: this.cursor };
  }

  /** A message from the connection's holder (the worker, the leader, or this tab). */
  receive(message) {
    if (!this.listeners.size) return;
    if (message.type === "status") {
      this.state = message.state;
      // A holder's position comes after the events it sent, so one past ours is a holder that
      // took over with events that never reached this tab: its subscriptions read again.
      if (this.cursor && isAfter(message.cursor, this.cursor)) message = { ...message, missed: true };
      if (isAfter(message.cursor, this.cursor)) this.cursor = message.cursor;
    } else if (message.type === "event") {
      // After a hand-over the new holder may replay what the old one had passed on.
      if (message.event === "order.update" && !isAfter(message.cursor, this.cursor)) return;
      this.cursor = message.cursor || this.cursor;
    } else {
      return;
    }
    for (const listener of Array.from(this.listeners)) listener(message);
  }

  /** The transport cannot serve (a worker that failed to start): take the next one. */
  fallBack(failed) {
    if (this.transport !== failed) return;
    failed.close();
    this.transport = pickTransport(this, failed.mode);
    if (this.listeners.size) this.transport.want(true);
  }
}

const hubs = new Map();

function hubFor(auth) {
  const scope = scopeOf(auth);
  if (!hubs.has(scope)) hubs.set(scope, new Hub(auth, scope));
  return hubs.get(scope);
}

function scopeOf(auth) {
  // Tabs share a connection only when they hold the same credential: the cookie is the
  // browser's, a sessionStorage token is its tab's and could be another customer's.
  if (auth === "cookie") return "cookie";
  const token = customerToken() || "";
  try {
    return "token-" + JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch (error) {
    return "token-" + token.length;
  }
}

function pickTransport(hub, failedMode = null) {
  if (typeof SharedWorker === "function" && failedMode === null) {
    try {
      return new WorkerTransport(hub);
    } catch (error) {
      // a browser that refuses the worker (a policy, a private mode): share another way
    }
  }
  if (globalThis.navigator && navigator.locks && typeof BroadcastChannel === "function") {
    return new LeaderTransport(hub);
  }
  return new DirectTransport(hub);
}

function workerName(scope) {
  return PROTOCOL + "/" + scope;
}

function workerLock(scope) {
  return PROTOCOL + "/worker/" + scope;
}

function tabId() {
  return globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
}

// The SharedWorker holds the connection; this tab tells it when it wants events, answers its
// ticket requests (sessionStorage is the tab's), and reports the notes it hands over.
class WorkerTransport {
  constructor(hub) {
    this.mode = "worker";
    this.hub = hub;
    this.id = tabId();
    const url = new URL(import.meta.url);
    this.worker = new SharedWorker(url, { type: "module", name: workerName(hub.scope) });
    this.worker.onerror = () => hub.fallBack(this); // no module workers, or the script failed
    this.port = this.worker.port;
    this.port.onmessage = (event) => this.onMessage(event.data);
    this.port.start();
    this.wanted = false;
    this.greeted = false;
    // The worker learns that this tab is gone when it is granted the lock the tab holds for
    // its whole life: closed, crashed or navigated away, with or without a pagehide. So the
    // tab says hello only once it holds that lock.
    const greet = () => {
      this.greeted = true;
      this.hello();
    };
    if (navigator.locks) {
      navigator.locks.request(PROTOCOL + "/tab/" + this.id, () => {
        greet();
        return new Promise(() => {});
      });
    } else {
      greet();
    }
    window.addEventListener("pagehide", () => this.port.postMessage({ type: "bye" }));
    window.addEventListener("pageshow", (event) => { if (event.persisted) this.hello(); });
  }

  hello() {
    this.port.postMessage({ type: "hello", tab: this.id, auth: this.hub.auth, want: this.wanted });
  }

  close() {
    this.port.close();
  }

  want(on) {
    this.wanted = on;
    if (this.greeted) this.port.postMessage({ type: "want", on });
  }

  onMessage(message) {
    this.watchWorker();
    if (message.type === "unsupported") return this.hub.fallBack(this);
    if (message.type === "ticket?") return this.answerTicket(message.id);
    if (message.type === "note") {
      if (message.ticket) health.ticket = message.ticket;
      return note(message.reason);
    }
    this.hub.receive(message);
  }

  watchWorker() {
    // A browser may stop a shared worker while its tabs live on. The worker holds a lock for
    // its whole life (and answers no tab before it does): a tab granted it knows the worker is
    // gone, and takes the connection over the leader's way, from the last id it received.
    if (this.watching || !navigator.locks) return;
    this.watching = true;
    navigator.locks.request(workerLock(this.hub.scope), () => this.hub.fallBack(this));
  }

  async answerTicket(id) {
    try {
      this.port.postMessage({ type: "ticket", id, ticket: await fetchTicket(this.hub.auth) });
    } catch (error) {
      const reason = error instanceof SignedOut ? "signed-out" : "failed";
      this.port.postMessage({ type: "ticket", id, error: reason });
    }
  }
}

// Web Locks: the tab holding the lock connects and posts every message on the channel; the
// others wait in the lock's queue, so when the leader goes (closed, or nothing left to follow)
// the next is granted the lock at once and resumes from the last id it received.
class LeaderTransport {
  constructor(hub) {
    this.mode = "leader";
    this.hub = hub;
    this.name = PROTOCOL + "/" + hub.scope;
    this.channel = new BroadcastChannel(this.name);
    this.channel.onmessage = (event) => this.onMessage(event.data);
    this.connection = null;
    this.release = null;
    this.waiting = null;
    this.sawLeader = false;
  }

  want(on) {
    if (!on) {
      if (this.waiting) this.waiting.abort();
      if (this.release) this.release();
      this.waiting = null;
      return;
    }
    this.sawLeader = false;
    this.waiting = new AbortController();
    const options = { mode: "exclusive", signal: this.waiting.signal };
    navigator.locks.request(this.name, options, () => this.lead()).catch(() => {});
    this.channel.postMessage({ type: "hello" }); // the leader, if any, answers with its status
  }

  lead() {
    this.waiting = null;
    if (this.sawLeader) note("leader-change");
    this.connection = connectFromTab(this.hub, (message) => {
      this.channel.postMessage(message);
      this.hub.receive(message);
    });
    return new Promise((resolve) => {
      this.release = () => {
        this.connection.stop();
        this.connection = this.release = null;
        resolve();
      };
    });
  }

  get role() {
    return this.connection ? "leader" : "follower";
  }

  onMessage(message) {
    if (this.connection) {
      if (message.type === "hello") this.channel.postMessage(this.connection.status());
      return;
    }
    if (message.type === "hello") return;
    this.sawLeader = true;
    this.hub.receive(message);
  }
}

// Neither SharedWorker nor Web Locks: this tab connects on its own (over HTTP/1.1 a browser
// then runs out of connections past five or six such tabs; see the README).
class DirectTransport {
  constructor(hub) {
    this.mode = "direct";
    this.hub = hub;
    this.connection = null;
    this.noted = false;
  }

  want(on) {
    if (!on) {
      if (this.connection) this.connection.stop();
      this.connection = null;
      return;
    }
    if (!this.noted) note("unshared");
    this.noted = true;
    this.connection = connectFromTab(this.hub, (message) => this.hub.receive(message));
  }
}

/** The connection held by a tab (the leader, or a tab on its own), from where this tab is. */
function connectFromTab(hub, send) {
  const { auth, cursor } = hub;
  const getTicket = () => fetchTicket(auth);
  const connection = new AccountConnection({ auth, cursor, getTicket, send, note });
  connection.start();
  return connection;
}

/** How this tab gets its events: "worker", "leader", "follower" or "direct" (diagnostics);
 * null before its first subscription. */
export function sharingMode() {
  const hub = Array.from(hubs.values()).pop();
  return hub ? hub.transport.role || hub.transport.mode : null;
}

// --- inside the SharedWorker ---------------------------------------------------------------

function runWorker() {
  // Every tab of one worker has the same credential (the worker's name says which).
  const tabs = new Map(); // port -> {auth, want}
  const tickets = new Map(); // request id -> {port, resolve, reject}
  let connection = null;
  let nextTicketId = 1;

  // The lock the tabs wait on to learn that this worker is gone; no tab hears from it before
  // it holds the lock (a tab asking first would be granted it at once).
  const locks = self.navigator.locks;
  const scope = self.name.slice(workerName("").length);
  const held = locks ? new Promise((resolve) => {
    locks.request(workerLock(scope), () => {
      resolve();
      return new Promise(() => {});
    });
  }) : Promise.resolve();

  const wanting = () => Array.from(tabs).filter(([, tab]) => tab.want);
  const sendAll = (message) => { for (const [port] of wanting()) port.postMessage(message); };

  function update() {
    const interested = wanting();
    if (interested.length && !connection) {
      const auth = interested[0][1].auth;
      connection = new AccountConnection({ auth, getTicket: askTicket, send: sendAll, note: handNote });
      connection.start();
    } else if (!interested.length && connection) {
      connection.stop();
      connection = null;
    }
  }

  function handNote(reason) {
    // One tab reports it (the newest still following), so nothing is counted twice.
    const newest = wanting().pop();
    const ticket = connection && connection.ticket;
    if (newest) newest[0].postMessage({ type: "note", reason, ticket });
  }

  function askTicket() {
    // Only a tab can fetch a ticket (it has the customer's token); ask one, and another if it leaves.
    return new Promise((resolve, reject) => {
      const id = nextTicketId++;
      tickets.set(id, { resolve, reject });
      askAgain(id);
    });
  }

  function askAgain(id) {
    const asked = tickets.get(id);
    const tab = wanting().pop();
    if (!tab) {
      tickets.delete(id);
      return asked.reject(new Error("no tab to ask for a ticket"));
    }
    asked.port = tab[0];
    tab[0].postMessage({ type: "ticket?", id });
  }

  function answered(message) {
    const asked = tickets.get(message.id);
    if (!asked) return;
    tickets.delete(message.id);
    if (message.ticket) asked.resolve(message.ticket);
    else asked.reject(message.error === "signed-out" ? new SignedOut() : new Error("ticket failed"));
  }

  function leave(port) {
    if (!tabs.delete(port)) return;
    for (const [id, asked] of tickets) if (asked.port === port) askAgain(id);
    update();
  }

  function wants(port, on) {
    tabs.get(port).want = on;
    if (on && connection) port.postMessage(connection.status());
    update();
  }

  function onMessage(port, message) {
    const tab = tabs.get(port);
    if (message.type === "hello") {
      if (typeof EventSource !== "function") return port.postMessage({ type: "unsupported" });
      tabs.set(port, { auth: message.auth, want: false });
      if (locks) locks.request(PROTOCOL + "/tab/" + message.tab, () => leave(port));
      wants(port, message.want);
    } else if (message.type === "want" && tab) {
      wants(port, message.on);
    } else if (message.type === "bye") {
      leave(port);
    } else if (message.type === "ticket") {
      answered(message);
    }
  }

  self.onconnect = (event) => {
    const port = event.ports[0];
    port.onmessage = (message) => held.then(() => onMessage(port, message.data));
    port.start();
  };
}

if (inWorker) runWorker();

// --- subscriptions ---------------------------------------------------------------------------

function authOf(options) {
  if (options.auth === "cookie" || options.auth === "ticket") return options.auth;
  return customerToken() ? "ticket" : "cookie";
}

/** What one subscriber follows: once the connection's holder counts this tab in (its first
 * status), every update from then on reaches it; so read the current state then, and pass on
 * the updates newer than that state. If the holder was only connecting, its first account
 * snapshot may be newer than the state read: then read it again (`joined` says so). */
class Follower {
  constructor(onEvent, auth) {
    this.onEvent = onEvent;
    this.auth = auth;
    this.hub = hubFor(auth);
    this.phase = "waiting"; // waiting -> joining -> live (-> joining again to resync)
    this.buffer = [];
    this.state = null;
    this.rejoin = false; // events were lost while the state was being read: read it again
    this.ended = false;
    this.retryTimer = null;
    this.backoff = new Backoff();
    this.listener = (message) => this.receive(message);
    health.auth = auth;
  }

  start() {
    this.hub.add(this.listener);
    return () => this.end(null);
  }

  end(reason) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.retryTimer);
    this.hub.remove(this.listener);
    if (reason) this.emit({ type: "end", reason });
  }

  emit(event) {
    try {
      this.onEvent(event);
    } catch (error) {
      console.error(error); // a subscriber's bug must not stop the others
    }
  }

  receive(message) {
    if (this.ended) return;
    if (message.type === "status") {
      if (message.missed && this.phase === "live") this.join();
      else if (message.missed && this.phase === "joining") this.rejoin = true;
      if (message.state !== this.state) {
        this.state = message.state;
        if (message.state === "signed-out") return this.end("signed-out");
        this.emit({ type: "connection", state: message.state });
      }
      if (this.phase === "waiting") this.join();
      return;
    }
    if (this.phase === "waiting") this.join();
    if (message.event === "order.update") this.onUpdate(message.data);
    else if (message.event === "account.snapshot") this.onAccountSnapshot(message.data.orders || []);
  }

  onUpdate(update) {
    if (this.phase === "live") this.deliver(update);
    else this.buffer.push(update);
  }

  async join() {
    this.phase = "joining";
    let body;
    try {
      body = await requestJson(this.url, this.auth);
    } catch (error) {
      if (this.ended) return;
      if (error instanceof SignedOut) return this.end("signed-out");
      if (error instanceof NotFound) return this.end("not-found");
      this.retryTimer = setTimeout(() => this.join(), this.backoff.next());
      return;
    }
    if (this.ended) return;
    if (this.rejoin || this.joined(body) === false) {
      this.rejoin = false;
      return this.join();
    }
    this.phase = "live";
    const buffered = this.buffer;
    this.buffer = [];
    for (const update of buffered) {
      if (this.ended) return;
      this.deliver(update);
    }
  }
}

class OrderFollower extends Follower {
  constructor(orderId, onEvent, auth) {
    super(onEvent, auth);
    this.orderId = orderId;
    this.url = ORDERS_API + "/" + encodeURIComponent(orderId);
    this.seen = null; // the order's last event id passed on
    this.atLeast = null; // an id the stream showed while the snapshot was on its way
  }

  joined(snapshot) {
    const last = lastEventIdOf(snapshot);
    const wanted = this.atLeast;
    this.atLeast = null;
    // The stream showed a newer state than this snapshot (the connection started again from a
    // fresh account snapshot meanwhile): read it again rather than miss the steps between.
    if (wanted && isAfter(wanted, last)) return false;
    this.seen = last;
    this.emit({ type: "order.snapshot", data: snapshot, id: last });
    if (snapshot.stage === "completed") this.end("completed");
    return true;
  }

  onUpdate(update) {
    if (update.orderId === this.orderId) super.onUpdate(update);
  }

  onAccountSnapshot(orders) {
    // Shown when the connection could not resume: the order's current payload, not the steps
    // before it. Newer than what we passed on means steps were missed: read the order again.
    const mine = orders.find((order) => order.orderId === this.orderId);
    if (!mine || !mine.eventId) return;
    if (this.phase === "live" && isAfter(mine.eventId, this.seen)) this.join();
    else if (this.phase === "joining" && isAfter(mine.eventId, this.atLeast)) this.atLeast = mine.eventId;
  }

  deliver(update) {
    if (update.eventId && !isAfter(update.eventId, this.seen)) return; // in the snapshot already
    this.seen = update.eventId || this.seen;
    this.emit({ type: "order.update", data: update, id: update.eventId || null });
    if (update.stage === "completed") this.end("completed");
  }
}

function lastEventIdOf(snapshot) {
  if (snapshot.lastEventId !== undefined) return snapshot.lastEventId;
  const history = snapshot.history || [];
  return snapshot.eventId || (history.length && history[history.length - 1].eventId) || null;
}

class OrdersFollower extends Follower {
  constructor(onEvent, auth) {
    super(onEvent, auth);
    this.url = ORDERS_API;
    this.seen = new Map(); // order id -> its last event id passed on
  }

  joined(body) {
    for (const order of body.orders || []) this.seen.set(order.orderId, order.eventId || null);
    this.emit({ type: "orders.snapshot", data: body });
    return true;
  }

  onAccountSnapshot(orders) {
    // Each entry is an order's current payload: pass on those newer than what we have.
    for (const order of orders) this.onUpdate(order);
  }

  deliver(update) {
    // A snapshot's entry for an order not started yet has no event: nothing happened to it.
    if (!update.eventId) return;
    const seen = this.seen.get(update.orderId);
    if (seen && !isAfter(update.eventId, seen)) return;
    this.seen.set(update.orderId, update.eventId || seen || null);
    this.emit({ type: "order.update", data: update, id: update.eventId || null });
  }
}

/**
 * Follow one order. `onEvent` receives, in order:
 *   {type: "order.snapshot", data, id}  the order as GET /api/orders/<id> has it (with history),
 *                                       first, and again whenever the stream had to start over;
 *   {type: "order.update", data, id}    each step after it (`id`: the order's event id);
 *   {type: "connection", state}         "connecting", "open", "reconnecting";
 *   {type: "end", reason}               "completed", "signed-out" or "not-found": nothing follows.
 * A failed order stays followed: an operator retry's new run comes on the same connection.
 * `options.auth`: "cookie" (the access_token cookie) or "ticket" (tickets bought with the
 * token in sessionStorage.access_token); by default "ticket" when that token is there.
 * Returns the function that unsubscribes.
 */
export function subscribeToOrder(orderId, onEvent, options = {}) {
  return new OrderFollower(orderId, onEvent, authOf(options)).start();
}

/**
 * Follow every order of the account. `onEvent` receives {type: "orders.snapshot", data}
 * (GET /api/orders: `data.orders`, newest first), then {type: "order.update", data, id} for
 * each order's step (an order new since the snapshot included), plus the "connection" and
 * "end" ("signed-out") events of subscribeToOrder. Returns the function that unsubscribes.
 */
export function subscribeToOrders(onEvent, options = {}) {
  return new OrdersFollower(onEvent, authOf(options)).start();
}

if (inPage) window.addEventListener("pagehide", reportHealth);
