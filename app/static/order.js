// The order page: follows /api/orders/<id>/events and draws the timeline from the events.
//
// No polling: the snapshot sent on connect gives the state, each order.update moves it on.
// The browser's EventSource reconnects by itself (sending Last-Event-ID, so nothing is lost
// or repeated); we step in only when it gives up (an HTTP error) or when the credential
// expired, and then reconnect with a fresh ticket and ?lastEventId=. Every reconnect of ours
// waits a jittered, capped, growing delay, so a page that keeps failing never hammers the
// server; the delay starts over once a stream has stayed up for a while.
(function () {
  "use strict";

  const root = document.getElementById("order");
  if (!root) return;
  const orderId = root.dataset.orderId;
  const useCookie = root.dataset.auth === "cookie";
  const api = "/api/orders/" + encodeURIComponent(orderId);
  const els = {
    current: document.getElementById("current"),
    connection: document.getElementById("connection"),
    signedOut: document.getElementById("signed-out"),
    steps: Object.fromEntries(
      Array.from(root.querySelectorAll("[data-step]")).map((li) => [li.dataset.step, li])
    ),
  };

  for (const li of Object.values(els.steps)) {
    li.dataset.defaultDetail = li.querySelector(".detail").textContent;
  }

  // What the page knows; exposed for diagnostics (and the browser tests).
  const page = {
    events: [], ids: [], lastEventId: null, finished: false, awaitingRetry: false, connections: 0,
  };
  window.orderPage = page;

  let source = null;
  let failures = 0; // reconnects in a row that did not lead to a stream staying up
  let healthyTimer = null;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_CAP_MS = 60000;
  const HEALTHY_AFTER_MS = 10000;
  const REPORT_AFTER_MS = 10000;
  let lastTicket = null; // the stream's credential, lent to the health report's beacon

  // --- connecting -----------------------------------------------------------------------

  function bearerHeaders() {
    // A portal that keeps the customer's token in sessionStorage lends it for the ticket.
    const token = window.sessionStorage.getItem("access_token");
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function streamUrl() {
    const params = new URLSearchParams();
    if (!useCookie) {
      const response = await fetch(api + "/stream-ticket", {
        method: "POST",
        credentials: "same-origin",
        headers: bearerHeaders(),
      });
      if (response.status === 401 || response.status === 403) throw new SignedOut();
      if (response.status === 404) throw new NotFound();
      if (!response.ok) throw new Error("ticket: HTTP " + response.status);
      lastTicket = (await response.json()).ticket;
      params.set("ticket", lastTicket);
    }
    if (page.lastEventId) params.set("lastEventId", page.lastEventId);
    if (page.awaitingRetry) params.set("waitForRetry", "1");
    const query = params.toString();
    return api + "/events" + (query ? "?" + query : "");
  }

  function SignedOut() {}
  function NotFound() {}

  async function connect() {
    if (page.finished) return;
    let url;
    try {
      url = await streamUrl();
    } catch (error) {
      if (error instanceof SignedOut) return showSignedOut();
      if (error instanceof NotFound) return showNotFound();
      note("ticket-failed");
      return retryLater();
    }
    if (page.connections > 0) note("reconnect");
    page.connections += 1;
    source = new EventSource(url, { withCredentials: true });
    source.onopen = () => {
      showConnection(null);
      // Only a stream that stays up resets the backoff: one that opens and ends at once
      // (an expiring credential, a refusal) must not become a loop.
      window.clearTimeout(healthyTimer);
      healthyTimer = window.setTimeout(() => { failures = 0; }, HEALTHY_AFTER_MS);
    };
    source.addEventListener("order.snapshot", onSnapshot);
    source.addEventListener("order.update", onUpdate);
    source.addEventListener("stream.end", onStreamEnd);
    source.onerror = onError;
  }

  function onError() {
    if (page.finished) return;
    note("eventsource-error");
    showConnection("Reconnecting…");
    // CONNECTING: the browser retries by itself. CLOSED: it gave up (an HTTP error answer).
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      useCookie ? probeSession() : retryLater();
    }
  }

  async function probeSession() {
    // With a cookie, a refusal usually means the session ended; ask once to tell.
    try {
      const response = await fetch(api + "/stream-ticket", { method: "POST", credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) return showSignedOut();
      if (response.status === 404) return showNotFound();
    } catch (error) {
      // offline, or the server is down: just try again later
    }
    retryLater();
  }

  function retryLater() {
    showConnection("Reconnecting…");
    window.setTimeout(connect, nextDelay());
  }

  function nextDelay() {
    // Exponential, capped, with "equal jitter": pages that failed together retry apart.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** failures);
    failures += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function onStreamEnd(message) {
    const reason = JSON.parse(message.data).reason;
    if (reason === "overloaded" || reason === "credential-expired") note(reason);
    if (reason !== "credential-expired") return; // a restart: the browser reconnects and resumes
    source.close();
    source = null;
    if (useCookie) return showSignedOut();
    retryLater(); // a fresh ticket, resuming after the last event seen
  }

  // --- telling operators how the connection fares -------------------------------------
  // Counts by reason, sent at most every REPORT_AFTER_MS and when the page goes away, with
  // sendBeacon (it survives the page closing); nothing but the counts leaves the page.

  const noted = {};
  let reportTimer = null;
  page.noted = noted;

  function note(reason) {
    noted[reason] = (noted[reason] || 0) + 1;
    if (reportTimer === null) reportTimer = window.setTimeout(report, REPORT_AFTER_MS);
  }

  function report() {
    window.clearTimeout(reportTimer);
    reportTimer = null;
    const events = Object.assign({}, noted);
    if (!Object.keys(events).length || !navigator.sendBeacon) return;
    for (const reason of Object.keys(noted)) delete noted[reason];
    const query = !useCookie && lastTicket ? "?ticket=" + encodeURIComponent(lastTicket) : "";
    const body = new Blob([JSON.stringify({ events })], { type: "application/json" });
    navigator.sendBeacon("/api/client-events" + query, body);
  }
  page.report = report;
  window.addEventListener("pagehide", report);

  // --- events ---------------------------------------------------------------------------

  function onSnapshot(message) {
    const snapshot = JSON.parse(message.data);
    if (snapshot.order) showSummary(snapshot.order);
    page.events = snapshot.history || [];
    page.ids = page.events.map(() => null);
    page.lastEventId = message.lastEventId || page.lastEventId;
    render();
  }

  function onUpdate(message) {
    page.events.push(JSON.parse(message.data));
    page.ids.push(message.lastEventId);
    page.lastEventId = message.lastEventId;
    render();
  }

  function finish() {
    page.finished = true;
    closeStream();
  }

  function awaitRetry() {
    // A failed order may be retried by an operator: this stream is over, so open a quiet one
    // that the server keeps open until the next run's events (no polling).
    if (page.awaitingRetry) return;
    page.awaitingRetry = true;
    closeStream();
    connect();
  }

  function closeStream() {
    if (source) source.close();
    source = null;
    showConnection(null);
  }

  // --- drawing --------------------------------------------------------------------------

  const STEP_OF = { queued: "queued", activating: "activating", provisioning: "provisioning", completed: "result" };

  function render() {
    const current = page.events[page.events.length - 1];
    if (!current) return showPlaced();
    const run = current.run || 1;
    const mine = page.events.filter((e) => (e.run || 1) === run);
    // Steps an earlier run got through stay done: a retried run resumes where it failed.
    const seen = (stage) => mine.find((e) => e.stage === stage) || earlier(stage, run);

    setStep("queued", mine.find((e) => e.stage === "queued") ? "done" : "pending", mine[0]);
    setStep("activating", seen("activating") ? "done" : seen("queued") ? "current" : "pending", seen("activating"));
    const provisioning = seen("provisioning");
    setStep("provisioning", provisioning ? "current" : "pending", provisioning);
    setStep("result", "pending", null);
    els.steps.result.querySelector("h2").textContent = "Completed";

    if (current.stage === "retrying") showRetry(current);
    if (current.stage === "completed") showCompleted(current);
    if (current.stage === "failed") showFailed(current, mine);
    els.current.textContent = describe(current);
    if (current.stage === "completed") finish();
    else if (current.stage === "failed") awaitRetry();
    else page.awaitingRetry = false;
  }

  function earlier(stage, run) {
    const found = page.events.filter((e) => e.stage === stage && (e.run || 1) < run);
    return found[found.length - 1];
  }

  function setStep(step, state, event) {
    const li = els.steps[step];
    li.className = "step " + state;
    if (state.startsWith("current")) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
    const when = li.querySelector(".when");
    when.textContent = event ? clock(event.timestamp) : "";
    if (event) when.setAttribute("datetime", event.timestamp);
    else when.removeAttribute("datetime");
    const detail = event && event.message ? event.message : li.dataset.defaultDetail;
    li.querySelector(".detail").textContent = detail;
  }

  function showRetry(event) {
    const step = STEP_OF[event.step] || "activating";
    const li = els.steps[step];
    setStep(step, "current retrying", null);
    li.querySelector(".detail").textContent = retryText(event);
    li.querySelector(".when").textContent = clock(event.timestamp);
  }

  function showCompleted(event) {
    const run = event.run || 1;
    setStep("provisioning", "done", page.events.find((e) => e.stage === "provisioning" && (e.run || 1) === run));
    els.steps.provisioning.querySelector(".detail").textContent = "Created and accepted in WHMCS";
    setStep("result", "done", event);
    const whmcs = event.whmcs;
    if (whmcs) {
      els.steps.result.querySelector(".detail").textContent =
        "Service active. WHMCS order " + whmcs.orderId + " (services " + whmcs.serviceIds.join(", ") + ")";
    }
  }

  function showFailed(event, mine) {
    const stopped = event.step === "activating" || event.step === "provisioning" ? event.step
      : mine.some((e) => e.stage === "provisioning") ? "provisioning" : "activating";
    els.steps[stopped].className = "step stopped";
    setStep("result", "failed", event);
    els.steps.result.querySelector("h2").textContent = "Failed";
    const error = event.error || {};
    els.steps.result.querySelector(".detail").textContent =
      "Reason: " + (error.message || "unknown") + (error.code ? " (" + error.code + ")" : "");
  }

  function retryText(event) {
    const attempts = event.maxAttempts ? " of " + event.maxAttempts : "";
    return event.message + ", attempt " + event.attempt + attempts;
  }

  function describe(event) {
    const run = (event.run || 1) > 1 ? " (attempt " + event.run + ")" : "";
    switch (event.stage) {
      case "queued": return "Received: waiting for a worker" + run;
      case "activating": return "Activating: marked in Salesforce" + run;
      case "provisioning": return "Provisioning in WHMCS" + run;
      case "retrying": return "Retrying: " + retryText(event);
      case "completed": return "Completed: your service is active";
      case "failed": return "Failed: " + ((event.error && event.error.message) || "unknown reason");
      default: return event.stage;
    }
  }

  function clock(timestamp) {
    const date = new Date(timestamp);
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function showSummary(order) {
    // What was ordered, from the ownership lookup's one read (no call of its own).
    page.summary = order;
    if (order.number) document.querySelector(".order-number").textContent = "Order " + order.number;
    const placed = document.getElementById("placed");
    placed.textContent = order.placed ? new Date(order.placed + "T00:00:00").toLocaleDateString() : "";
    placed.dateTime = order.placed || "";
    document.getElementById("items").replaceChildren(...(order.items || []).map((item) => {
      const li = document.createElement("li");
      li.textContent = item.quantity > 1 ? item.quantity + " × " + item.name : item.name;
      return li;
    }));
    const total = document.getElementById("total");
    total.textContent = order.total == null ? "" : order.total.toFixed(2);
    document.getElementById("summary").hidden = false;
  }

  function showConnection(text) {
    els.connection.hidden = !text;
    els.connection.textContent = text || "";
  }

  function showPlaced() {
    // Salesforce has the order; fulfillment has not started. The stream stays open and the
    // first step arrives on it: nothing to retry, nothing to poll.
    els.current.textContent = "Order placed: waiting for fulfillment to start";
  }

  function showNotFound() {
    page.finished = true;
    showConnection(null);
    els.current.textContent = "We could not find this order";
  }

  function showSignedOut() {
    page.finished = true;
    showConnection(null);
    els.signedOut.hidden = false;
    els.current.textContent = "Not signed in";
  }

  connect();
})();
