// The demo home: a submit button says it is working while its form is on its way (placing an
// order takes a few seconds against the slow scenarios), and cannot be pressed twice.
for (const form of document.querySelectorAll("form")) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button[data-pending]");
    if (!button) return;
    button.dataset.idle = button.textContent;
    button.textContent = button.dataset.pending;
    button.setAttribute("aria-busy", "true");
    // The submission has its entries already (the button has no name among them).
    button.disabled = true;
  });
}

// Back to this page from the next one (the back/forward cache): the button is ready again.
window.addEventListener("pageshow", () => {
  for (const button of document.querySelectorAll("button[data-idle]")) {
    button.textContent = button.dataset.idle;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
});
