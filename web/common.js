// Shared by both pages: JSON requests with a bearer token, problem
// documents turned into readable messages, and Server-Sent Events read from
// a fetch() stream (EventSource cannot send an Authorization header).
"use strict";

const api = "/api/v1";

// A refused request: the problem document's code and a sentence for people.
class Refusal extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `request failed (${status})`);
    this.status = status;
    this.code = problem.code || "error";
  }
}

const friendly = {
  token_invalid: "Your sign-in or queue token is no longer valid. Sign in or enter the queue again.",
  token_not_active: "You are not admitted yet: wait for your turn in the queue.",
  forbidden: "That belongs to another user.",
  not_found: "Not found (it may have been removed, or is not yours).",
  seat_unavailable: "Someone else took that seat a moment ago. Pick another one.",
  hold_expired: "Your hold ran out before the payment. Hold a seat again.",
  already_paid: "This reservation is already paid.",
  insufficient_balance: "Your balance is too low for this seat: charge your wallet first.",
  validation_failed: "That value is out of range",
  rate_limited: "Too many requests: wait a moment and try again.",
  unavailable: "The service is busy or unavailable: try again in a moment.",
};

function explain(error) {
  if (error instanceof Refusal) {
    // Which range was passed (an amount, the balance's limit) is only in
    // the service's own sentence.
    if (error.code === "validation_failed") return `${friendly.validation_failed}: ${error.message}. (${error.code})`;
    const known = friendly[error.code];
    return known ? `${known} (${error.code})` : `${error.message} (${error.code})`;
  }
  // Every charge, hold and payment is sent with its key (sendKeyed), so
  // one sent again after an outage is never made twice: say so, there only
  // (a sign-in or an audit run charges nothing).
  const promise = error.keyed ? "; nothing is charged, held or paid twice" : "";
  return `The service cannot be reached (${error.message}): try again in a moment${promise}.`;
}

// How a failed request's message is shown: one that never reached the
// service is "offline", and goes away once a live stream is back.
function kindOf(error) {
  // fetch() rejects with a TypeError when the request never got an answer.
  return error instanceof TypeError ? "offline" : "error";
}

async function request(method, path, token, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(api + path, init);
  noteServerTime(response);
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // Not the service's JSON: a proxy's error page while the service is
    // down or restarting. It was shown as a script error ("Unexpected token
    // '<'"); it is the service being out of reach, and is asked again.
    throw new Refusal(response.ok ? 502 : response.status, { code: "unavailable", title: `answered ${response.status} by something in front of the service` });
  }
  if (!response.ok) throw new Refusal(response.status, data);
  return data;
}

// How far the service's clock is ahead of this device's, from the `Date`
// header of the last answer: a countdown to a time the service set must not
// trust a device clock that may be off by minutes. The header has whole
// seconds (cut, not rounded), so the service's clock read somewhere in the
// second after it: half a second on is at most half a second off.
let serverClockAhead = 0;

function noteServerTime(response) {
  const date = Date.parse(response.headers.get("Date"));
  if (!Number.isNaN(date)) serverClockAhead = date + 500 - Date.now();
}

function serverNow() {
  return Date.now() + serverClockAhead;
}

// Follows an event stream until `signal` aborts or `more()` says to stop,
// reconnecting with Last-Event-ID after a dropped connection. A busy or
// unreachable service (5xx) and too many streams (429) pass, so those are
// tried again, less often each time; any other refusal will not change by
// itself and goes to `onRefusal`, which ends the stream. `onDown` is told
// when a connection fails or is refused for now, `onUp` when one carries
// something.
//
// While no connection carries anything (a proxy that blocks or holds back
// event streams, a service restarting), `fallback`, when given, asks the
// stream's plain route every FALLBACK_EVERY_MS instead, and says which of
// the two it is: `onStalled` when it was answered, `onDown` when it threw
// (it throws when the service cannot be reached). Without it, a page whose
// streams a proxy blocked showed "waiting" long after its admission, drew
// no seat, and said the service could not be reached.
async function follow(path, token, onEvent, { signal, onRefusal, more = () => true, onDown = () => {}, onUp = () => {}, fallback = null, onStalled = () => {} }) {
  let lastId = null;
  let pause = 1000;
  let flowing = false;
  // A connection that carried something has broken since the service was
  // last found answering (a restart drops every stream), and what ends the
  // pause before the next try early, while one runs.
  let broke = false;
  let endPause = null;
  // The service answers again: a stream that broke, or that failed while the
  // service could not be reached, is tried at once rather than at the end
  // of its backoff (up to 10 s, said meanwhile to be held back in between).
  const retryNow = (wasDown) => {
    if (!endPause || !(wasDown || broke)) return false;
    broke = false;
    endPause();
    return true;
  };
  const ended = new AbortController();
  signal.addEventListener("abort", () => ended.abort(), { once: true });
  if (fallback) askWhileStalled(ended.signal, () => !flowing, fallback, { onDown, onStalled, retryNow });
  // With a fallback, it tells whether the service is down.
  const down = fallback ? () => {} : onDown;
  try {
    while (!signal.aborted && (await more())) {
      try {
        const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(api + path, { headers, signal });
        if (!response.ok) {
          const problem = await response.json().catch(() => ({}));
          if (response.status < 500 && response.status !== 429) {
            if (!signal.aborted) onRefusal(new Refusal(response.status, problem));
            return;
          }
          if (response.status >= 500) down();
          // The service says when to come back; it is waited for at least.
          const after = Number(response.headers.get("Retry-After")) * 1000;
          if (after > pause) pause = Math.min(after, 60_000);
        } else {
          // Only a stream that carried something resets the pause: one that
          // ends at once (a service draining, a proxy cutting it) backs off.
          let delivered = false;
          const carried = () => {
            if (!flowing) onUp();
            flowing = true;
          };
          await readEvents(response, signal, (id) => (lastId = id), (type, data) => {
            delivered = true;
            onEvent(type, data);
          }, carried);
          if (delivered) pause = 1000;
        }
      } catch (error) {
        if (signal.aborted) return;
        // Only a connection that failed or broke: a fault of the page's own
        // (an event it could not read) is no outage to announce.
        if (error instanceof TypeError) down();
      } finally {
        if (flowing) broke = true;
        flowing = false;
      }
      await pauseFor(pause, signal, (end) => (endPause = end));
      endPause = null;
      pause = Math.min(pause * 2, 10_000);
    }
  } finally {
    ended.abort();
  }
}

const FALLBACK_EVERY_MS = 5_000;

const FIRST_FALLBACK_MS = 2_000;

// How long a stream tried at once (`retryNow`) has to carry something
// before something in between is blamed.
const RETRIED_STREAM_GRACE_MS = 1_000;

async function askWhileStalled(signal, stalled, fallback, { onDown, onStalled, retryNow }) {
  let wait = FIRST_FALLBACK_MS;
  let wasDown = false;
  while (!signal.aborted) {
    await pauseFor(wait, signal);
    wait = FALLBACK_EVERY_MS;
    if (signal.aborted || !stalled()) continue;
    try {
      await fallback();
      // Back after a restart, the stream was waiting out its backoff: it
      // is tried now, and only if that carries nothing either is the
      // stream said to be held back.
      if (!signal.aborted && retryNow(wasDown)) await pauseFor(RETRIED_STREAM_GRACE_MS, signal);
      wasDown = false;
      if (!signal.aborted && stalled()) onStalled();
    } catch (error) {
      // A refusal the fallback did not take up itself is no outage.
      const unreachable = !(error instanceof Refusal) || error.status >= 500 || error.status === 429;
      if (unreachable) wasDown = true;
      if (!signal.aborted && unreachable) onDown();
    }
  }
}

// Waits `ms`, or less: until `signal` aborts, or the function handed to
// `onEnd` is called.
function pauseFor(ms, signal, onEnd = () => {}) {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
    signal.addEventListener("abort", resolve, { once: true });
    onEnd(resolve);
  });
}

// Hands each event of one connection to `onEvent`, none after `signal`
// aborts (an event may close its own stream, with more in the same chunk);
// `onChunk` is told of every chunk that arrives, a comment's too.
async function readEvents(response, signal, noteId, onEvent, onChunk = () => {}) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onChunk();
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0 && !signal.aborted) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("id:")) noteId(line.slice(3).trim());
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      if (data) onEvent(type, JSON.parse(data));
    }
  }
}

function $(id) {
  return document.getElementById(id);
}

function show(id, visible) {
  $(id).hidden = !visible;
}

function say(id, text, kind = "info") {
  const element = $(id);
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = !text;
}

// The message stays at the top of the screen over whatever scrolls under
// it: a control the keyboard moves to there is brought out from under it
// (WCAG 2.2's focus not obscured; at 200 % zoom a seat or a date button
// took the focus unseen).
document.addEventListener("focusin", (event) => {
  const message = $("message");
  if (!message || message.hidden || event.target === message) return;
  const covered = message.getBoundingClientRect().bottom - event.target.getBoundingClientRect().top;
  if (covered > 0) window.scrollBy(0, -(covered + 8));
});

function won(amount) {
  return `₩${Number(amount).toLocaleString("en-US")}`;
}

// A concert's start, in the reader's own time zone, named (a date read
// "12/24/2026, 7:00:00 PM": seconds, and no zone to tell whose evening).
function dateTime(iso) {
  return new Date(iso).toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short",
  });
}

// A deadline today, to the second (a hold or an admission runs out on it).
function clockTime(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
}

// Whether a failed request may go through if sent again: no answer came
// (the connection failed, or what came was not the service's), or the
// service was busy or cut short (5xx) or asked to slow down (429).
function isTransient(error) {
  return !(error instanceof Refusal) || error.status >= 500 || error.status === 429;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The Idempotency-Key of each request still without its answer, by what it
// asks (`intent`), for a minute: the same request sent again, by a retry or
// another click, goes with the same key, so if the first took effect the
// service answers it rather than charging, holding or paying twice.
const unanswered = new Map();
const UNANSWERED_FOR = 60_000;

// Sends a keyed request, and again after no answer or a 5xx (the store
// busy, or the request cut short, which may still have taken effect): with
// the same Idempotency-Key a retry gets the first answer, never a second
// charge, hold or payment.
async function sendKeyed(send, intent, attempts = 3) {
  const kept = unanswered.get(intent);
  const sent = kept && Date.now() - kept.since < UNANSWERED_FOR ? kept : { key: idempotencyKey(), since: Date.now() };
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await send({ "Idempotency-Key": sent.key });
      unanswered.delete(intent);
      return answer;
    } catch (error) {
      const lost = !(error instanceof Refusal) || error.status >= 500;
      if (lost) unanswered.set(intent, sent);
      else unanswered.delete(intent);
      error.keyed = true;
      if (!lost || attempt >= attempts) throw error;
      await sleep(1000 * attempt);
    }
  }
}

// A token as pasted, without the spaces, line breaks and invisible
// characters (a zero-width space) a copy may carry: a header holding one
// is refused by the browser before anything is sent.
function pastedToken(text) {
  // Copied with its header's scheme ("Bearer eyJ…", as the service's log
  // line shows it), it was sent as "BearereyJ…" and called forged.
  const token = text.replace(/^[\s\u200B-\u200D\u2060\uFEFF]*bearer\s+/i, "");
  return token.replace(/[\s\u200B-\u200D\u2060\uFEFF]/g, "");
}

// A fresh Idempotency-Key. crypto.randomUUID exists only in secure contexts
// (HTTPS or localhost); a page opened over plain HTTP from another address
// builds the same version-4 UUID from crypto.getRandomValues.
function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
