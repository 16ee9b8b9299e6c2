// The auditors' page: the log in commit order with paging, one stream's
// history with its stored hash chain, and the audit's result, whose
// violations link to the streams they name and mark their events there.
"use strict";

const PAGE = 50;
// Rows of a stream drawn at first; the rest on request (a wallet can have thousands).
const STREAM_ROWS = 200;
// Past every position: `before` it is the newest page.
const END = Number.MAX_SAFE_INTEGER;
const audit = {
  token: null,
  first: 0, // the position of the page's first event (0: none shown)
  next: 0, // the position of its last, to page on from
  stream: null, // { type, id, events, whole } of the stream shown
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
  if (error.status === 401) {
    clearShown();
    return say("message", `The admin token is missing or wrong. (${error.code})`, "error");
  }
  say("message", explain(error), "error");
}

// What another token showed must not stay on screen under this one.
function clearShown() {
  for (const id of ["feed", "report", "stream"]) show(id, false);
  for (const id of ["events", "stream-events"]) $(id).replaceChildren();
  clearAuditResult();
  audit.stream = null;
}

// A refused or failed run must not leave the last run's findings showing.
function clearAuditResult() {
  for (const id of ["audit-summary", "audit-checkpoint", "audit-held-to"]) $(id).textContent = "";
  $("violations").replaceChildren();
  audit.flagged = new Map();
}

// `2026-12-04T23:07:59.023236Z` as `2026-12-04 23:07:59.023`: the log's own
// time, in UTC as the API gives it, whatever this device's zone.
function utc(recordedAt) {
  return recordedAt ? new Date(recordedAt).toISOString().replace("T", " ").replace("Z", "") : "";
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

// A page of the log: `after` a position, or the page `before` one. A page
// with nothing newer keeps the one shown and says so.
async function loadPage({ after, before }) {
  say("message", "");
  try {
    const query = before === undefined ? `after=${after}` : `before=${before}`;
    const page = await request("GET", `/audit/events?${query}&limit=${PAGE}`, audit.token);
    show("feed", true);
    show("report", true);
    if (!page.events.length && audit.first) {
      say("message", before === undefined ? "No newer events yet." : "This is the first page.", "info");
      return;
    }
    audit.first = page.events[0]?.position ?? 0;
    audit.next = page.next;
    $("events").replaceChildren(...feedRows(page.events, { after, before }));
    $("page-range").textContent = page.events.length
      ? `events ${audit.first}–${page.events[page.events.length - 1].position}`
      : "no events yet";
    onFirstPage(audit.first <= 1);
  } catch (error) {
    refuse(error);
  }
}

// No page before the first: "Previous page" is disabled. Pressed from the
// keyboard until page 1, it took the focus down to the page with it: the
// focus goes on to "Next page", the way back.
function onFirstPage(first) {
  const previous = $("previous-page");
  const focused = document.activeElement === previous;
  previous.disabled = first;
  if (first && focused) $("next-page").focus();
}

// The page's events, with a row wherever positions are missing: positions
// run 1, 2, 3… without a hole, so a hole is an event gone. Also at the
// page's edges: after the position it was asked `after`, before the one it
// was asked `before`, and before its first event when a page asked `before`
// came back short (it starts the log).
function feedRows(events, { after, before }) {
  const rows = [];
  let previous = after ?? (events.length < PAGE ? 0 : null);
  for (const event of events) {
    if (previous !== null && event.position > previous + 1) rows.push(holeRow(previous, event.position));
    previous = event.position;
    const row = document.createElement("tr");
    const streamCell = cell("");
    streamCell.append(streamLink(`${event.aggregate_type}/${event.aggregate_id.slice(0, 8)}`, event.aggregate_type, event.aggregate_id));
    row.append(cell(event.position), streamCell, cell(event.sequence), cell(event.event_type),
      cell(event.metadata.actor || ""), cell(utc(event.recorded_at)));
    rows.push(row);
  }
  if (before !== undefined && before !== END && previous !== null && before > previous + 1) {
    rows.push(holeRow(previous, before));
  }
  return rows;
}

// A row saying that the positions between `previous` and `next` are missing.
function holeRow(previous, next) {
  const hole = document.createElement("tr");
  hole.className = "flagged";
  const missing = next - previous - 1 === 1 ? `position ${previous + 1} is` : `positions ${previous + 1}–${next - 1} are`;
  const note = cell(`${missing} missing from the log`);
  note.colSpan = 6;
  hole.append(note);
  return hole;
}

async function loadStream(type, id) {
  say("message", "");
  try {
    const { events } = await request("GET", `/audit/streams/${encodeURIComponent(type)}/${encodeURIComponent(id)}`, audit.token);
    audit.stream = { type, id, events, whole: false };
    drawStream();
    // To the first event the last audit names, else to the stream's top;
    // the keyboard's focus follows, to the stream's heading (it stayed on
    // the link, a page away).
    ($("stream-events").querySelector("tr.flagged") || $("stream")).scrollIntoView();
    $("stream").querySelector("h2").focus({ preventScroll: true });
  } catch (error) {
    // The stream shown is not the one asked for: it stayed under "Not
    // found", read as the answer.
    clearStream();
    // Only a typed stream can be malformed; the service's sentence was the
    // parser's ("Cannot parse `aggregate_id` … UUID parsing failed").
    if (error instanceof Refusal && error.code === "bad_request") {
      return say("message", `"${type}/${id}" is not a stream: name one as TYPE/ID, the ID a UUID, as the feed's stream column shows it.`, "error");
    }
    refuse(error);
  }
}

function clearStream() {
  show("stream", false);
  $("stream-events").replaceChildren();
  audit.stream = null;
}

// The hashes as stored, each row beside the one it chains from. The page
// does not recompute them: the audit does, and its findings are marked.
function drawStream() {
  const { type, id, events } = audit.stream;
  // Drawn whole when asked, or when the audit names an event past the first rows.
  const flaggedLate = events.slice(STREAM_ROWS).some((event) => audit.flagged.has(flagKey(type, id, event.sequence)));
  const whole = audit.stream.whole || flaggedLate || events.length <= STREAM_ROWS;
  const shown = whole ? events : events.slice(0, STREAM_ROWS);
  $("whole-stream").textContent = `Show all ${events.length} events`;
  show("whole-stream", !whole);
  show("stream", true);
  $("stream-name").textContent = `${type}/${id}`;
  const streamRules = audit.flagged.get(flagKey(type, id));
  say("stream-flag", streamRules ? `The last audit names this stream: ${streamRules.join("; ")}.` : "", "error");
  let previous = null;
  $("stream-events").replaceChildren(...shown.map((event) => {
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

// One run at a time: the button waits for the report (a double click read
// the whole log twice).
async function runAudit() {
  const button = $("run-audit");
  if (button.disabled) return;
  button.disabled = true;
  try {
    await auditOnce();
  } finally {
    button.disabled = false;
  }
}

async function auditOnce() {
  say("message", "");
  $("audit-summary").textContent = "Reading the whole log…";
  try {
    const held = $("checkpoint").value.trim();
    const query = held ? `?checkpoint=${encodeURIComponent(held)}` : "";
    const report = await request("GET", `/audit/report${query}`, audit.token);
    const count = report.violations.length;
    const checkpointed = report.matches_checkpoint === true
      ? `, and the log up to position ${held.split(":")[0]} is the one checkpointed`
      : report.matches_checkpoint === false ? `; the log up to position ${held.split(":")[0]} is NOT the one checkpointed` : "";
    $("audit-summary").textContent = count
      ? `${count} violation(s) in ${report.events} events${checkpointed}.`
      : `All rules hold over ${report.events} events${checkpointed}.`;
    $("audit-summary").dataset.kind = count ? "error" : "ok";
    // Kept outside the database, it proves later that the log up to here is
    // unchanged; not a log that breaks the rules, which it would anchor.
    $("audit-checkpoint").textContent = !report.checkpoint ? "" : count
      ? `Checkpoint: ${report.checkpoint.text}. Not one to keep: this log breaks the rules below.`
      : `Checkpoint: ${report.checkpoint.text}. Keep it outside the database; ` +
        "an audit given it later names any change to the log up to here.";
    // The settings no event states, as each serve recorded them (a report
    // from a release before them has none).
    const heldTo = report.held_to;
    $("audit-held-to").textContent = !heldTo ? "" :
      `Admissions held to CONCERT_QUEUE_ACTIVE_MAX=${heldTo.active_limits}; ` +
      (heldTo.ttls
        ? `holds and admissions to ${heldTo.ttls}.`
        : "hold and admission times not checked: no serve recorded its TTLs.");
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
    clearAuditResult();
    if (audit.stream) drawStream();
    refuse(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("admin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    audit.token = pastedToken($("admin-token").value);
    audit.first = 0;
    clearShown();
    // The keyboard's focus follows to the feed once it is there: it stayed
    // in the token's field, and nothing said the feed had come.
    loadPage({ after: 0 }).then(() => {
      if (!$("feed").hidden) $("feed").querySelector("h2").focus();
    });
  });
  $("first-page").addEventListener("click", () => loadPage({ after: 0 }));
  $("previous-page").addEventListener("click", () => loadPage({ before: audit.first }));
  $("next-page").addEventListener("click", () => loadPage({ after: audit.next }));
  $("newest-page").addEventListener("click", () => loadPage({ before: END }));
  $("whole-stream").addEventListener("click", () => {
    audit.stream.whole = true;
    drawStream();
    // The button is gone: the focus goes to the first row it brought, not
    // to the page's top.
    const firstNew = $("stream-events").children[STREAM_ROWS];
    if (firstNew) {
      firstNew.tabIndex = -1;
      firstNew.focus();
    }
  });
  $("run-audit").addEventListener("click", runAudit);
  // A long log (40,000 events is 800 pages) is reached where it matters:
  // at a position, or at the stream a question is about.
  $("goto-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const position = Number($("goto-position").value);
    if (!Number.isSafeInteger(position) || position < 1) {
      return say("message", "Enter a position: a whole number from 1.", "error");
    }
    loadPage({ after: position - 1 });
  });
  $("stream-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("stream-ref").value.trim();
    const slash = text.indexOf("/");
    if (slash < 1 || slash === text.length - 1) {
      return say("message", "Name a stream as TYPE/ID, as the feed's stream column shows it (e.g. Wallet/ and a user's id).", "error");
    }
    loadStream(text.slice(0, slash), text.slice(slash + 1));
  });
});
