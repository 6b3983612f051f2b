// What the customer reads about an order: the order page's and the orders page's words.
//
// The events carry operator detail (system names, error codes, vendor messages); that stays
// in Flower, the logs and the API. Nothing here shows it: each stage and each error code has
// a sentence of its own, and an unknown code gets a general one.

/** The status line, one sentence per stage (the steps below it say something else). */
export const STATUS = {
  placed: "Order placed — we'll start on it shortly",
  queued: "We've received your order",
  activating: "We're getting your service ready",
  provisioning: "We're setting up your line",
  retrying: "Taking a little longer than usual — we're trying again",
  completed: "All done — your order is complete",
  failed: "We couldn't finish your order",
};

/** The timeline's steps: their heading, and what they say before, during and after. */
export const STEPS = {
  queued: { title: "Received", pending: "We'll confirm we have your order", current: "We have your order", done: "We have your order" },
  activating: {
    title: "Getting your service ready", pending: "Next, we confirm your order",
    current: "Confirming your order", done: "Your order is confirmed",
  },
  provisioning: {
    title: "Setting up your line", pending: "Then we set up your services and billing",
    current: "Setting up your services and billing", done: "Your services and billing are set up",
  },
  result: { title: "Ready to use", pending: "We'll show it here as soon as it's ready", done: "Everything you ordered is ready to use" },
};
export const RESULT_DONE_TITLE = "Your service is active";
export const RESULT_FAILED_TITLE = "Not completed";
/** The step a failure stopped at. */
export const STOPPED_DETAIL = "This is where it stopped";

/** Screen-reader text for a step's state (shown to nobody else). */
export const STATE_TEXT = { done: "completed", current: "in progress", pending: "not started", stopped: "stopped", failed: "stopped" };

// A plain reason for each error code a failed order can carry (fulfillment/failures.py and
// the integrations' codes).
const REASONS = {
  WHMCS_ERROR: "Our billing system couldn't accept the order for your account.",
  WHMCS_AUTH: "One of our systems couldn't be reached.",
  WHMCS_UNAVAILABLE: "Our billing system was too busy to take the order.",
  WHMCS_LIMIT: "Our billing system was too busy to take the order.",
  SALESFORCE_UNAVAILABLE: "Our order system was too busy to confirm the order.",
  SALESFORCE_NOT_FOUND: "We couldn't find the details of this order.",
  SALESFORCE_ERROR: "We couldn't confirm the order.",
  SANDBOX_UNAVAILABLE: "One of our systems couldn't be reached.",
  RECOVERY_EXHAUSTED: "Setting up your service kept being interrupted.",
  WORKER_LOST: "Setting up your service kept being interrupted.",
  BROKER_UNAVAILABLE: "We couldn't start work on the order.",
};
const GENERAL_REASON = "Something went wrong on our side.";

/** The failure's plain reason, from its `error` object ({code, message, retryable}). */
export function failureReason(error) {
  return REASONS[(error || {}).code] || GENERAL_REASON;
}

/** What happens next: we try again (a retryable failure) or the customer asks support. */
export function failureNext(error) {
  return error && error.retryable
    ? "We've been notified and will try again; this page updates by itself."
    : "Please contact support, who can finish it for you.";
}

/** "Order 00000123" when the summary has Salesforce's number, else the order id. */
export function orderReference(summary, orderId) {
  return summary && summary.number ? "Order " + summary.number : orderId;
}

export function triedAgain(count) {
  return "Tried again " + (count === 1 ? "once" : count + " times");
}

/** The signed-out notice and status line: a lapsed session, or a visitor to sign in. */
export function signedOut(hadCredential, what) {
  return hadCredential
    ? { why: "Your session has ended. Sign in again to see " + what + ".", status: "Signed out" }
    : { why: "Sign in to see " + what + ".", status: "Not signed in" };
}
