// The auditors' page: the log in commit order with paging, one stream's
// history with its stored hash chain, and the audit's result, whose
// violations link to the streams they name and mark their events there.
"use strict";

const PAGE = 50;
const audit = {
  token: null,
  after: 0,
  next: 0,
  stream: null, // { type, id, events } of the stream shown
  flagged: new Map(), // flagKey → the rules the last audit run found broken there
};

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// The booking page's wording speaks of sign-in and queue tokens; here the
// only credential is the admin token.
function refuse(error) {
  say("message", error.status === 401 ? "The admin token is missing or wrong." : explain(error), "error");
}

function streamLink(text, type, id) {
  const link = document.createElement("a");
  link.href = "#";
  link.textContent = text;
  link.title = `${type}/${id}`;
  link.addEventListener("click", (click) => {
    click.preventDefault();
    loadStream(type, id);
  });
  return link;
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
      const streamCell = cell("");
      streamCell.append(streamLink(`${event.aggregate_type}/${event.aggregate_id.slice(0, 8)}`, event.aggregate_type, event.aggregate_id));
      row.append(cell(event.position), streamCell, cell(event.sequence), cell(event.event_type),
        cell(event.metadata.actor || ""), cell(new Date(event.recorded_at).toLocaleString()));
      return row;
    }));
    $("page-range").textContent = page.events.length
      ? `events ${page.events[0].position}–${page.events[page.events.length - 1].position}`
      : "no events after this point";
    $("next-page").disabled = page.events.length < PAGE;
  } catch (error) {
    refuse(error);
  }
}

async function loadStream(type, id) {
  say("message", "");
  try {
    const { events } = await request("GET", `/audit/streams/${encodeURIComponent(type)}/${encodeURIComponent(id)}`, audit.token);
    audit.stream = { type, id, events };
    drawStream();
    $("stream").scrollIntoView();
  } catch (error) {
    refuse(error);
  }
}

// The hashes as stored, each row beside the one it chains from. The page
// does not recompute them: the audit does, and its findings are marked.
function drawStream() {
  const { type, id, events } = audit.stream;
  show("stream", true);
  $("stream-name").textContent = `${type}/${id}`;
  const streamRules = audit.flagged.get(flagKey(type, id));
  say("stream-flag", streamRules ? `The last audit names this stream: ${streamRules.join("; ")}.` : "", "error");
  let previous = null;
  $("stream-events").replaceChildren(...events.map((event) => {
    const hash = event.metadata.hash || "";
    const rules = audit.flagged.get(flagKey(type, id, event.sequence));
    const row = document.createElement("tr");
    row.classList.toggle("flagged", Boolean(rules));
    row.append(cell(event.sequence), cell(event.position ?? "–"), cell(event.event_type),
      cell(JSON.stringify(event.payload), "payload"), cell(`${hash.slice(0, 16)}…`, "hash"),
      cell(previous === null ? "(first)" : `${previous.slice(0, 16)}…`, "hash"),
      cell(rules ? `violates: ${rules.join("; ")}` : ""));
    previous = hash;
    return row;
  }));
}

// A violation names an event as `#57 Seat/<id> seq 3 SeatHeld`, or a whole
// stream as `Wallet/<id>` (a read-model row that disagrees with the log).
function parseLabel(label) {
  const match = /^(?:#\d+ )?(\w+)\/([0-9a-f-]{36})(?: seq (\d+))?/.exec(label);
  return match && { type: match[1], id: match[2], sequence: match[3] && Number(match[3]) };
}

function flagKey(type, id, sequence) {
  return sequence ? `${type}/${id}/${sequence}` : `${type}/${id}`;
}

function violatingEvent(label) {
  const entry = document.createElement("li");
  const named = parseLabel(label);
  entry.append(named ? streamLink(label, named.type, named.id) : label);
  return entry;
}

async function runAudit() {
  $("audit-summary").textContent = "Reading the whole log…";
  try {
    const held = $("checkpoint").value.trim();
    const query = held ? `?checkpoint=${encodeURIComponent(held)}` : "";
    const report = await request("GET", `/audit/report${query}`, audit.token);
    const count = report.violations.length;
    $("audit-summary").textContent = count
      ? `${count} violation(s) in ${report.events} events.`
      : `All rules hold over ${report.events} events` +
        (held ? `, and the log up to position ${held.split(":")[0]} is the one checkpointed.` : ".");
    $("audit-summary").dataset.kind = count ? "error" : "ok";
    // Kept outside the database, it proves later that the log up to here is unchanged.
    $("audit-checkpoint").textContent = report.checkpoint
      ? `Checkpoint: ${report.checkpoint.text}. Keep it outside the database; ` +
        "an audit given it later names any change to the log up to here."
      : "";
    audit.flagged = new Map();
    $("violations").replaceChildren(...report.violations.map((violation) => {
      for (const named of violation.events.map(parseLabel).filter(Boolean)) {
        const key = flagKey(named.type, named.id, named.sequence);
        audit.flagged.set(key, [...(audit.flagged.get(key) || []), violation.rule]);
      }
      const item = document.createElement("li");
      const title = document.createElement("strong");
      title.textContent = `${violation.rule}: `;
      const events = document.createElement("ul");
      events.append(...violation.events.map(violatingEvent));
      item.append(title, violation.detail, events);
      return item;
    }));
    if (audit.stream) drawStream();
  } catch (error) {
    $("audit-summary").textContent = "";
    refuse(error);
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
