// The order page: draws the order's timeline from order-events.js's subscription.
//
// No polling: the order's snapshot, read once the shared stream is open, gives the state,
// and each update moves it on. The module shares one connection among the origin's tabs,
// resumes it after a drop, renews tickets, and ends the subscription at `completed`; a failed
// order stays followed, so an operator retry's new run shows up on the same page.
import {
  RESULT_DONE_TITLE, RESULT_FAILED_TITLE, STATE_TEXT, STATUS, STEPS, STOPPED_DETAIL,
  failureNext, failureReason, orderReference, signedOut, triedAgain,
} from "./order-copy.js";
import { hadCredential, healthNoted, reportHealth, sharingMode, subscribeToOrder } from "./order-events.js";

const root = document.getElementById("order");
const els = root && {
  current: document.getElementById("current"),
  connection: document.getElementById("connection"),
  signedOut: document.getElementById("signed-out"),
  problem: document.getElementById("problem"),
  missing: document.getElementById("missing"),
  timeline: document.getElementById("timeline"),
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
//
// The timeline is a faithful record: retries show as a note on their step, and after an
// operator's retry (run 2) the step where the earlier run stopped says so. Times never run
// backwards: Received keeps the order's first time, every other step its latest.

const STEP_OF = { queued: "queued", activating: "activating", provisioning: "provisioning", completed: "result" };
const ORDER = ["queued", "activating", "provisioning", "result"];
let countdownTimer = null;

function render() {
  const current = page.events[page.events.length - 1];
  if (!current) return showPlaced();
  clearTimeout(countdownTimer);
  const run = current.run || 1;
  const mine = page.events.filter((e) => (e.run || 1) === run);
  // Steps an earlier run got through stay done: a retried run resumes where it failed.
  const seen = (stage) => mine.find((e) => e.stage === stage) || earlier(stage, run);

  setStep("queued", seen("queued") ? "done" : "pending", firstOf("queued"));
  setStep("activating", seen("activating") ? "done" : seen("queued") ? "current" : "pending", lastOf("activating"));
  setStep("provisioning", seen("provisioning") ? "current" : "pending", lastOf("provisioning"));
  setStep("result", "pending", null);

  if (current.stage === "retrying") showRetry(current);
  if (current.stage === "completed") showCompleted(current);
  if (current.stage === "failed") showFailed(current);
  else els.problem.hidden = true;
  for (const step of ORDER) note(step, run);
  setText(els.current, STATUS[current.stage] || STATUS.queued);
  // At `completed` the subscription ends by itself; at `failed` it waits for a retry's run.
  page.finished = current.stage === "completed";
  page.awaitingRetry = current.stage === "failed";
}

function earlier(stage, run) {
  const found = page.events.filter((e) => e.stage === stage && (e.run || 1) < run);
  return found[found.length - 1];
}

function firstOf(stage) {
  return page.events.find((e) => e.stage === stage);
}

function lastOf(stage) {
  return page.events.filter((e) => e.stage === stage).pop();
}

function setStep(step, state, event) {
  const li = els.steps[step];
  li.className = "step " + state;
  if (state.startsWith("current")) li.setAttribute("aria-current", "step");
  else li.removeAttribute("aria-current");
  li.querySelector(".state").textContent = STATE_TEXT[state.split(" ")[0]];
  setWhen(li, event);
  const copy = STEPS[step];
  setText(li.querySelector(".detail"), copy[state.split(" ")[0]] || copy.pending);
  setText(li.querySelector("h2"), copy.title);
}

function setWhen(li, event) {
  const when = li.querySelector(".when");
  when.textContent = event ? clock(event.timestamp) : "";
  if (event) when.setAttribute("datetime", event.timestamp);
  else when.removeAttribute("datetime");
}

function setText(element, text) {
  // Only on change: a live region re-reads, and a MutationObserver sees, real changes only.
  if (element.textContent !== text) element.textContent = text;
}

function note(step, run) {
  // What the record holds besides the step's state: its retries, an earlier run's stop.
  const parts = [];
  const retries = page.events.filter((e) => e.stage === "retrying" && STEP_OF[e.step] === step);
  const li = els.steps[step];
  const retrying = li.classList.contains("retrying");
  const made = retrying ? retries.length - 1 : retries.length; // the last one is still to come
  if (made > 0) parts.push(triedAgain(made));
  for (const failed of page.events.filter((e) => e.stage === "failed" && (e.run || 1) < run)) {
    if (stoppedAt(failed) !== step) continue;
    const restarted = page.events.find((e) => (e.run || 1) > (failed.run || 1));
    parts.push("Stopped at " + clock(failed.timestamp) + (restarted ? ", started again at " + clock(restarted.timestamp) : ""));
  }
  const el = li.querySelector(".note");
  setText(el, parts.join(". "));
  el.hidden = !parts.length;
}

function stoppedAt(failed) {
  if (failed.step === "activating" || failed.step === "provisioning") return failed.step;
  const run = failed.run || 1;
  return page.events.some((e) => e.stage === "provisioning" && (e.run || 1) === run) ? "provisioning" : "activating";
}

function showRetry(event) {
  const step = STEP_OF[event.step] || "activating";
  const li = els.steps[step];
  setStep(step, "current retrying", event);
  const detail = li.querySelector(".detail");
  const due = event.nextRetryAt ? Date.parse(event.nextRetryAt) : NaN;
  if (isNaN(due)) return setText(detail, "Trying again shortly");
  // A countdown in a fixed-width box: the line keeps its length as the seconds go down. It
  // is not in the live region; the status line above says once what is going on.
  const seconds = document.createElement("span");
  seconds.className = "countdown";
  detail.replaceChildren("Next try in ", seconds);
  const tick = () => {
    const left = Math.ceil((due - Date.now()) / 1000);
    if (left <= 0) return detail.replaceChildren("Trying again now");
    seconds.textContent = left + " s";
    countdownTimer = setTimeout(tick, Math.min(1000, due - Date.now() - (left - 1) * 1000));
  };
  tick();
}

function showCompleted(event) {
  setStep("provisioning", "done", lastOf("provisioning"));
  setStep("result", "done", event);
  setText(els.steps.result.querySelector("h2"), RESULT_DONE_TITLE);
}

function showFailed(event) {
  const stopped = stoppedAt(event);
  const li = els.steps[stopped];
  li.className = "step stopped";
  li.removeAttribute("aria-current");
  li.querySelector(".state").textContent = STATE_TEXT.stopped;
  setText(li.querySelector(".detail"), STOPPED_DETAIL);
  setStep("result", "failed", event);
  const result = els.steps.result;
  setText(result.querySelector("h2"), RESULT_FAILED_TITLE);
  setText(result.querySelector(".detail"), failureReason(event.error));
  setText(els.problem.querySelector(".next"), failureNext(event.error));
  setText(els.problem.querySelector(".reference strong"), orderReference(page.summary, root.dataset.orderId));
  els.problem.hidden = false;
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
  setText(els.current, STATUS.placed);
}

function showNotFound() {
  page.finished = true;
  showConnection(null);
  els.current.textContent = "We couldn't find this order";
  els.timeline.hidden = true;
  els.missing.hidden = false;
}

function showSignedOut() {
  page.finished = true;
  showConnection(null);
  const words = signedOut(hadCredential(root.dataset.auth), "your order");
  els.signedOut.querySelector(".why").textContent = words.why;
  els.signedOut.hidden = false;
  els.timeline.hidden = true;
  els.current.textContent = words.status;
}
