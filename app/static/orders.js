// The orders page: every order of the signed-in account, each with its live stage, from one
// account stream (GET /api/orders/events). A first version; the shared client module
// (order-events.js) replaces the connection code here.
const list = document.getElementById("order-list");
const connection = document.getElementById("connection");
const orders = new Map();
window.ordersPage = { orders, events: [] };

const LABELS = {
  queued: "Received", activating: "Activating", provisioning: "Setting up",
  retrying: "Retrying", completed: "Completed", failed: "Needs attention",
};

function render() {
  const rows = [...orders.values()];
  list.replaceChildren(...rows.map((order) => {
    const li = document.createElement("li");
    li.className = "order-row";
    li.dataset.orderId = order.orderId;
    li.dataset.stage = order.stage || "placed";
    const link = document.createElement("a");
    link.href = "/orders/" + encodeURIComponent(order.orderId);
    link.textContent = order.orderId;
    const stage = document.createElement("span");
    stage.className = "stage";
    stage.textContent = LABELS[order.stage] || "Placed, waiting";
    li.append(link, " ", stage);
    return li;
  }));
}

const source = new EventSource("/api/orders/events", { withCredentials: true });
source.addEventListener("account.snapshot", (message) => {
  orders.clear();
  for (const order of JSON.parse(message.data).orders) orders.set(order.orderId, order);
  connection.hidden = true;
  render();
});
source.addEventListener("order.update", (message) => {
  const update = JSON.parse(message.data);
  window.ordersPage.events.push(update);
  const known = orders.get(update.orderId);
  if (known) {
    orders.set(update.orderId, { ...known, ...update }); // keeps its place in the list
  } else { // an order new to the page: newest, so first
    const rest = [...orders.entries()];
    orders.clear();
    orders.set(update.orderId, update);
    for (const [id, order] of rest) orders.set(id, order);
  }
  render();
});
source.onerror = () => {
  connection.textContent = "Reconnecting…";
  connection.hidden = false;
};
