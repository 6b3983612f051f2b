// The order page: draws the order's timeline from order-events.js's subscription.
//
// No polling: the order's snapshot, read once the shared stream is open, gives the state,
// and each update moves it on. The module shares one connection among the origin's tabs,
// resumes it after a drop, renews tickets, and ends the subscription at `completed`; a failed
// order stays followed, so an operator retry's new run shows up on the same page.
import { healthNoted, reportHealth, sharingMode, subscribeToOrder } from "./order-events.js";

const root = document.getElementById("order");
const els = root && {
  current: document.getElementById("current"),
  connection: document.getElementById("connection"),
  signedOut: document.getElementById("signed-out"),
  steps: Object.fromEntries(
    Array.from(root.querySelectorAll("[data-step]")).map((li) => [li.dataset.step, li])
  ),
};

// What the page knows; exposed for diagnostics (and the browser tests).
const page = {
  events: [], ids: [], lastEventId: null, finished: false, awaitingRetry: false, connections: 0,
  noted: healthNoted, report: reportHealth, sharing: sharingMode,
};

if (root) {
  window.orderPage = page;
  for (const li of Object.values(els.steps)) {
    li.dataset.defaultDetail = li.querySelector(".detail").textContent;
  }
  subscribeToOrder(root.dataset.orderId, onEvent, { auth: root.dataset.auth });
}

function onEvent(event) {
  switch (event.type) {
    case "order.snapshot":
      if (event.data.order) showSummary(event.data.order);
      page.events = (event.data.history || []).slice();
      page.ids = page.events.map((e) => e.eventId || null);
      page.lastEventId = event.id;
      return render();
    case "order.update":
      page.events.push(event.data);
      page.ids.push(event.id);
      page.lastEventId = event.id;
      return render();
    case "connection":
      if (event.state === "connecting") page.connections += 1;
      return showConnection(event.state === "reconnecting" ? "Reconnecting…" : null);
    case "end":
      showConnection(null);
      if (event.reason === "signed-out") return showSignedOut();
      if (event.reason === "not-found") return showNotFound();
  }
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
  // At `completed` the subscription ends by itself; at `failed` it waits for a retry's run.
  page.finished = current.stage === "completed";
  page.awaitingRetry = current.stage === "failed";
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

