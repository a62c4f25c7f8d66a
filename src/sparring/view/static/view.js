// Progressive enhancement for sparring view: every page works without this file.
// Keyboard shortcuts, and live pages that fetch themselves again when the store changes.
"use strict";

function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function follow(id) {
  const link = document.getElementById(id);
  if (link) { link.click(); return true; }
  return false;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
  const form = document.getElementById("label-form");
  const button = form && form.querySelector(`button[data-key="${event.key}"]`);
  let done = false;
  if (button) { button.click(); done = true; }
  else if (event.key === "v") { done = follow("reveal"); }
  else if (event.key === "j") { done = follow("next") || follow("next-page"); }
  else if (event.key === "k") { done = follow("prev") || follow("prev-page"); }
  else if (event.key === "n") { done = follow("skip"); }
  else if (event.key === "/") {
    const search = document.getElementById("q");
    if (search) { search.focus(); done = true; }
  }
  if (done) { event.preventDefault(); }
});

async function refresh(main) {
  const answer = await fetch("/version", { credentials: "same-origin" });
  if (!answer.ok) { return; }
  const { version } = await answer.json();
  if (version === main.dataset.version || main.contains(document.activeElement) &&
      typing(document.activeElement)) { return; }
  const page = await fetch(window.location.href, { credentials: "same-origin" });
  if (!page.ok) { return; }
  const fresh = new DOMParser().parseFromString(await page.text(), "text/html");
  const replacement = fresh.getElementById("main");
  if (replacement) {
    main.replaceChildren(...replacement.childNodes);
    main.dataset.version = replacement.dataset.version;
    if (!("live" in replacement.dataset)) { delete main.dataset.live; }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const main = document.getElementById("main");
  if (!main) { return; }
  const timer = window.setInterval(() => {
    if (!("live" in main.dataset)) { window.clearInterval(timer); return; }
    refresh(main).catch(() => undefined);
  }, 2000);
});
