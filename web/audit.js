// The auditors' page: the log in commit order with paging, one stream's
// history with its hash chain, and the audit's result.
"use strict";

const PAGE = 50;
const audit = { token: null, after: 0, next: 0 };

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

async function loadPage(after) {
  say("message", "");
  try {
    const page = await request("GET", `/audit/events?after=${after}&limit=${PAGE}`, audit.token);
    audit.after = after;
    audit.next = page.next;
    show("feed", true);
    show("report", true);
    $("events").replaceChildren(...page.events.map((event) => {
      const row = document.createElement("tr");
      const stream = document.createElement("a");
      stream.href = "#";
      stream.textContent = `${event.aggregate_type}/${event.aggregate_id.slice(0, 8)}`;
      stream.title = event.aggregate_id;
      stream.addEventListener("click", (click) => {
        click.preventDefault();
        loadStream(event.aggregate_type, event.aggregate_id);
      });
      const streamCell = cell("");
      streamCell.append(stream);
      row.append(cell(event.position), streamCell, cell(event.sequence), cell(event.event_type),
        cell(event.metadata.actor || ""), cell(new Date(event.recorded_at).toLocaleString()));
      return row;
    }));
    $("page-range").textContent = page.events.length
      ? `events ${page.events[0].position}–${page.events[page.events.length - 1].position}`
      : "no events after this point";
    $("next-page").disabled = page.events.length < PAGE;
  } catch (error) {
    say("message", explain(error), "error");
  }
}

// Each stored hash is SHA-256 chained over the stream's previous event; the
// page shows the links (the audit recomputes them).
async function loadStream(type, id) {
  try {
    const { events } = await request("GET", `/audit/streams/${encodeURIComponent(type)}/${encodeURIComponent(id)}`, audit.token);
    show("stream", true);
    $("stream-name").textContent = `${type}/${id}`;
    let previous = null;
    $("stream-events").replaceChildren(...events.map((event) => {
      const row = document.createElement("tr");
      const hash = event.metadata.hash || "";
      const link = previous === null ? "first" : `follows ${previous.slice(0, 12)}…`;
      previous = hash;
      row.append(cell(event.sequence), cell(event.position ?? "–"), cell(event.event_type),
        cell(JSON.stringify(event.payload), "payload"), cell(hash.slice(0, 16) + "…", "hash"), cell(link));
      return row;
    }));
    $("stream").scrollIntoView();
  } catch (error) {
    say("message", explain(error), "error");
  }
}

async function runAudit() {
  $("audit-summary").textContent = "Reading the whole log…";
  try {
    const report = await request("GET", "/audit/report", audit.token);
    const count = report.violations.length;
    $("audit-summary").textContent = count
      ? `${count} violation(s) in ${report.events} events.`
      : `All rules hold over ${report.events} events.`;
    $("audit-summary").dataset.kind = count ? "error" : "ok";
    $("violations").replaceChildren(...report.violations.map((violation) => {
      const item = document.createElement("li");
      const title = document.createElement("strong");
      title.textContent = `${violation.rule}: `;
      const events = document.createElement("ul");
      events.append(...violation.events.map((label) => {
        const entry = document.createElement("li");
        entry.textContent = label;
        return entry;
      }));
      item.append(title, violation.detail, events);
      return item;
    }));
  } catch (error) {
    $("audit-summary").textContent = "";
    say("message", explain(error), "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("admin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    audit.token = $("admin-token").value.trim();
    loadPage(0);
  });
  $("first-page").addEventListener("click", () => loadPage(0));
  $("next-page").addEventListener("click", () => loadPage(audit.next));
  $("run-audit").addEventListener("click", runAudit);
});
