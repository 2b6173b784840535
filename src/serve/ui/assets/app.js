// promptreg's web UI: what the pages do with JavaScript on. Every page works without it;
// this adds the versions panel's preview, the streamed run, the editor's line numbers, copy
// buttons and the live banner. Text from the server is only ever set as text.
"use strict";

function fragment(html, selector) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const found = doc.querySelector(selector);
  return found ? document.importNode(found, true) : null;
}

// Hovering (or focusing) a version shows it in place of the one loaded; leaving restores it.
function previews() {
  const links = document.querySelectorAll("a[data-preview]");
  if (!links.length) return;
  const kept = new Map();
  let shown = null;
  const view = () => document.getElementById("view");
  const original = view();
  const restore = () => {
    const now = view();
    if (now && now !== original) now.replaceWith(original);
    shown = null;
  };
  const preview = async (link) => {
    const url = link.dataset.preview;
    shown = url;
    if (!kept.has(url)) {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      kept.set(url, fragment(await response.text(), "#view"));
    }
    const part = kept.get(url);
    if (!part || shown !== url || link.getAttribute("aria-current") === "page") return;
    part.classList.add("preview");
    view().replaceWith(part);
  };
  for (const link of links) {
    link.addEventListener("mouseenter", () => preview(link));
    link.addEventListener("focus", () => preview(link));
    link.addEventListener("mouseleave", restore);
    link.addEventListener("blur", restore);
  }
}

// Line numbers beside the editor, and findings that jump to their line.
function editor() {
  const area = document.getElementById("source");
  const gutter = document.querySelector(".code .gutter");
  if (!area || !gutter) return;
  const number = () => {
    const count = area.value.split("\n").length;
    let text = "";
    for (let i = 1; i <= count; i++) text += i + "\n";
    gutter.textContent = text;
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener("input", number);
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  number();
  for (const link of document.querySelectorAll("a[data-line]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const line = Math.max(1, parseInt(link.dataset.line, 10) || 1);
      const lines = area.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
      area.focus();
      area.setSelectionRange(start, start + (lines[line - 1] || "").length);
    });
  }
}

// Run: the model's reply streams into the page as it arrives.
function runs() {
  const button = document.querySelector("[data-run-button]");
  const reply = document.getElementById("reply");
  if (!button || !reply) return;
  const form = button.form;
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    reply.textContent = "";
    button.disabled = true;
    try {
      const response = await fetch(form.dataset.run, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
      });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        reply.textContent += decoder.decode(value, { stream: true });
      }
      reply.dataset.done = response.ok ? "ok" : "failed";
    } finally {
      button.disabled = false;
    }
  });
}

// A copy button on each request to copy.
function copies() {
  if (!navigator.clipboard) return;
  for (const block of document.querySelectorAll("pre.copy")) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Copy";
    button.addEventListener("click", () => navigator.clipboard.writeText(block.textContent));
    block.after(button);
  }
}

// New commits: a banner naming what changed, and the list refreshed in place.
function live() {
  const banner = document.getElementById("live");
  if (!banner || !window.EventSource) return;
  const events = new EventSource("/ui/events");
  events.addEventListener("snapshot", async (event) => {
    let change;
    try { change = JSON.parse(event.data); } catch { return; }
    const gained = (change.versions || [])[0];
    let text = "New commit " + String(change.commit || "").slice(0, 10) + ".";
    if (gained) {
      const number = gained.versions[gained.versions.length - 1];
      text = gained.id + " v" + number + " was committed.";
      const response = await fetch("/ui/versions/" + encodeURI(gained.id), { credentials: "same-origin" });
      if (response.ok) {
        const list = await response.json();
        const version = (list.versions || []).find((v) => v.version === number);
        if (version) text = gained.id + " v" + number + " by " + version.author + ": " + version.message;
      }
    } else if ((change.defaults || []).length) {
      const moved = change.defaults[0];
      text = "The default of " + moved.id + " is now v" + moved.new + ".";
    }
    banner.textContent = text;
    banner.hidden = false;
    const table = document.querySelector("table[data-refresh]");
    if (table) {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (response.ok) {
        const fresh = fragment(await response.text(), "table[data-refresh]");
        if (fresh) table.replaceWith(fresh);
      }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  previews();
  editor();
  runs();
  copies();
  live();
});
