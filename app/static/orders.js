// The orders page: every order of the signed-in account with its live stage, from
// order-events.js's account subscription (the one connection the origin's tabs share).
//
// The list comes from GET /api/orders once the shared stream is open; each update then moves
// its order's row on, and an order placed meanwhile comes in at the top. No polling.
import { STATUS, failureReason, signedOut } from "./order-copy.js";
import { hadCredential, healthNoted, reportHealth, sharingMode, subscribeToOrders } from "./order-events.js";

const root = document.getElementById("orders");
const els = root && {
  list: document.getElementById("order-list"),
  summary: document.getElementById("summary"),
  connection: document.getElementById("connection"),
  signedOut: document.getElementById("signed-out"),
  row: document.getElementById("order-row"),
};

// Newest first: a Map keeps insertion order, and a new order is put in front.
const orders = new Map();
// What the page knows; exposed for diagnostics (and the browser tests).
const page = { orders, events: [], noted: healthNoted, report: reportHealth, sharing: sharingMode };

if (root) {
  window.ordersPage = page;
  subscribeToOrders(onEvent, { auth: root.dataset.auth });
}

function onEvent(event) {
  switch (event.type) {
    case "orders.snapshot":
      orders.clear();
      for (const order of event.data.orders || []) orders.set(order.orderId, order);
      root.dataset.state = "live";
      els.list.replaceChildren(...Array.from(orders.values(), drawRow));
      return summarize();
    case "order.update":
      page.events.push(event.data);
      return update(event.data);
    case "connection":
      return showConnection(event.state === "reconnecting" ? "Reconnecting…" : null);
    case "end":
      root.dataset.state = "ended";
      showConnection(null);
      return showSignedOut();
  }
}

function update(update) {
  const known = orders.has(update.orderId);
  // Updates do not repeat what was ordered: keep the list's summary.
  const order = known ? { order: orders.get(update.orderId).order, ...update } : update;
  if (!known) {
    const rest = Array.from(orders);
    orders.clear();
    orders.set(order.orderId, order);
    for (const [id, other] of rest) orders.set(id, other);
  }
  orders.set(order.orderId, order);
  const row = known && els.list.querySelector(`[data-order-id="${CSS.escape(order.orderId)}"]`);
  if (row) fillRow(row, order);
  else els.list.prepend(drawRow(order));
  summarize();
}

// --- drawing --------------------------------------------------------------------------

const LABELS = {
  queued: "Received", activating: "Getting ready", provisioning: "Setting up", retrying: "Trying again",
  completed: "Completed", failed: "Not completed",
};
// The order page's four steps: how many are done at each stage (the next is under way).
const DONE = { queued: 1, activating: 2, provisioning: 2, completed: 4 };
const STEPS = ["queued", "activating", "provisioning", "result"];

function stepsDone(order) {
  // A retry or a failure names the step it happened in (activating or provisioning).
  if (order.stage === "retrying" || order.stage === "failed") return order.step === "provisioning" ? 2 : 1;
  return DONE[order.stage] || 0;
}

function drawRow(order) {
  const row = els.row.content.firstElementChild.cloneNode(true);
  row.dataset.orderId = order.orderId;
  const link = row.querySelector(".order-link");
  link.href = "/orders/" + encodeURIComponent(order.orderId);
  fillRow(row, order);
  return row;
}

function fillRow(row, order) {
  const stage = order.stage || "placed";
  const summary = order.order || {};
  row.dataset.stage = stage;
  row.querySelector(".order-link").textContent = summary.number ? "Order " + summary.number : order.orderId;
  row.querySelector(".items").textContent = (summary.items || []).map(itemText).join(", ");
  row.querySelector(".stage").textContent = LABELS[stage] || "Placed";
  const done = stepsDone(order);
  STEPS.forEach((step, index) => {
    const item = row.querySelector(`[data-step=${step}]`);
    const failed = stage === "failed" && step === "result";
    const next = stage !== "failed" && index === done && Boolean(order.stage);
    item.className = index < done ? "done" : failed ? "failed" : next ? "next" : "";
  });
  row.querySelector(".detail").textContent = detail(order);
  const when = row.querySelector(".when");
  const date = order.timestamp ? new Date(order.timestamp) : null;
  const format = { dateStyle: "medium", timeStyle: "short" };
  when.textContent = date && !isNaN(date) ? date.toLocaleString([], format) : "";
  if (when.textContent) when.setAttribute("datetime", order.timestamp);
  else when.removeAttribute("datetime");
}

function itemText(item) {
  return item.quantity > 1 ? item.quantity + " × " + item.name : item.name;
}

function detail(order) {
  // The customer's words (order-copy.js), never the event's operator message.
  if (!order.stage) return STATUS.placed;
  if (order.stage === "failed") return STATUS.failed + ". " + failureReason(order.error);
  return STATUS[order.stage] || "";
}

function summarize() {
  const all = Array.from(orders.values());
  const moving = all.filter((o) => o.stage && o.stage !== "completed" && o.stage !== "failed").length;
  if (!all.length) {
    els.summary.textContent = "No orders yet";
  } else {
    const count = all.length === 1 ? "1 order" : all.length + " orders";
    els.summary.textContent = count + (moving ? ", " + moving + " in progress" : "");
  }
}

function showSignedOut() {
  const words = signedOut(hadCredential(root.dataset.auth), "your orders");
  els.signedOut.querySelector(".why").textContent = words.why;
  els.signedOut.hidden = false;
  els.summary.textContent = words.status;
}

function showConnection(text) {
  els.connection.hidden = !text;
  els.connection.textContent = text || "";
}
