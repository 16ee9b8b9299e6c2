// The booking page's event streams: the standing while queued, the seat
// map once a date is picked (app.js draws what they carry).
"use strict";

// A tab keeps one stream at most, the seat map's while it is shown (it ends
// when the token lapses or is spent) or else the standing's, and a hidden
// tab none: a browser opens only six HTTP/1.1 connections to one host, and
// each stream holds one for as long as it runs.
function visible() {
  return document.visibilityState !== "hidden";
}

// Live updates stop while the service cannot be reached, or come no more
// while something between blocks them; each is said, and the message goes
// once a stream is back. Said once (a screen reader would repeat it at
// every retry), and not over an error the user is reading.
const UNREACHABLE = "Live updates paused: the service cannot be reached. Reconnecting…";
const STALLED = "Live updates are not getting through (something between you and the service holds them back): this page asks every few seconds instead.";

function sayLive(text) {
  if ($("message").textContent === text) return;
  const shown = !$("message").hidden && $("message").dataset.kind === "error";
  if (!shown) say("message", text, "offline");
}

const liveStatus = {
  onDown: () => sayLive(UNREACHABLE),
  onStalled: () => sayLive(STALLED),
  onUp: () => {
    if ($("message").dataset.kind === "offline") say("message", "");
  },
};

// When the page asks whether the concert sold out, once its picked date is.
const SOLD_OUT_FIRST_ASK_MS = 1_500;
const SOLD_OUT_ASK_AGAIN_MS = 5_000;

function closeStreams() {
  state.standing?.abort();
  state.seatStream?.abort();
  state.standing = state.seatStream = null;
}

function watchStanding() {
  state.standing?.abort();
  state.standing = null;
  if (!visible()) return askWhileHidden();
  if (!state.queueToken || state.paid || state.status === "expired") return;
  const controller = new AbortController();
  state.standing = controller;
  const token = state.queueToken;
  follow("/queue/tokens/current/events", token, (type, standing) => {
    if (type === "standing") showStanding(standing);
  }, { signal: controller.signal, onRefusal: (error) => refuse(error, "queue"), more: () => state.status !== "expired", fallback: () => askStanding(token), ...liveStatus });
}

// Where the token stands, asked of the plain route (the streams' fallback);
// whether it is still the tab's token.
async function askStanding(token) {
  const standing = await request("GET", "/queue/tokens/current", token);
  if (state.queueToken !== token) return false;
  showStanding(standing);
  return true;
}

function watchSeats() {
  // Only an active token opens a seat map; a waiting one keeps its standing
  // stream, which says when it is admitted.
  if (state.status !== "active") return watchStanding();
  closeStreams();
  if (!visible()) return askWhileHidden();
  if (state.paid) return;
  const controller = new AbortController();
  state.seatStream = controller;
  // Compact changes: "2H,17S" (seat number and letter) instead of JSON objects.
  const path = `/concerts/${state.concertId}/dates/${state.date.date_id}/seats/events?changes=compact`;
  follow(path, state.queueToken, (type, data) => {
    if (type === "snapshot") drawSeats(data.seats);
    if (type === "seat-changes") {
      for (const change of data.split(",")) setSeat(Number(change.slice(0, -1)), letters[change.slice(-1)]);
    }
    if (state.unsoldSeats === 0) askWhetherSoldOut(state.queueToken, state.date.date_id);
  }, { signal: controller.signal, onRefusal: seatsRefused, more: stillAdmitted(state.queueToken), fallback: askSeats(state.queueToken, state.date), ...liveStatus });
}

// The seat map from the seat listing (the seat stream's fallback): its free
// seats, and the others as taken (the listing does not say held or sold).
// The map is drawn the first time, and only its changed seats after.
function askSeats(token, date) {
  const current = () => state.queueToken === token && state.date?.date_id === date.date_id && state.status === "active";
  return async () => {
    if (!(await askStanding(token)) || !current()) return;
    const free = new Set();
    let after = 0;
    while (after !== null) {
      const page = await request("GET", `/concerts/${state.concertId}/dates/${date.date_id}/seats?after_seat_no=${after}&limit=5000`, token);
      for (const seat of page.seats) free.add(seat.seat_no);
      after = page.next_after_seat_no;
    }
    if (!current()) return;
    const letterString = Array.from({ length: date.total_seats }, (_, index) => (free.has(index + 1) ? "F" : "T"));
    if (seatButtons().length !== letterString.length) return drawSeats(letterString.join(""));
    // A seat the stream told held or sold stays so while it is not free.
    letterString.forEach((letter, index) => {
      const wasFree = seatButtons()[index].dataset.status === "free";
      if (wasFree !== (letter === "F")) setSeat(index + 1, letters[letter]);
    });
  };
}

// Only the standing says whether the whole concert sold out, and its stream
// is closed while a seat map is open: once every seat of the picked date is
// sold, the page asks (a moment later: the service's own look may be a
// tenth of a second behind the sale), and again every few seconds while
// other dates may still have seats.
function askWhetherSoldOut(token, dateId, after = SOLD_OUT_FIRST_ASK_MS) {
  if (state.soldOutAsk || state.soldOut) return;
  const stillSold = () => state.queueToken === token && state.date?.date_id === dateId && state.unsoldSeats === 0 && !state.paid && !state.soldOut;
  state.soldOutAsk = setTimeout(async () => {
    state.soldOutAsk = null;
    if (!stillSold()) return;
    // A hidden tab asks nothing (it asked every 5 s unseen): its own looks
    // at its standing tell it.
    if (!visible()) return askWhetherSoldOut(token, dateId, SOLD_OUT_ASK_AGAIN_MS);
    try {
      const standing = await request("GET", "/queue/tokens/current", token);
      if (state.queueToken === token) showStanding(standing);
    } catch {
      // Not answered now: the next look asks again.
    }
    if (stillSold()) askWhetherSoldOut(token, dateId, SOLD_OUT_ASK_AGAIN_MS);
  }, after);
}

// The service ends a seat stream when its token lapses or is spent (perhaps
// in another tab) and would refuse it again: before opening it again, the
// page asks where the token stands, which is answered for an ended token too.
function stillAdmitted(token) {
  let opened = false;
  return async () => {
    if (!opened) return (opened = true);
    try {
      const standing = await request("GET", "/queue/tokens/current", token);
      if (state.queueToken === token) showStanding(standing);
      return standing.status === "active";
    } catch {
      // Not answered (follow() says so and tries again), or refused: the
      // stream's own refusal then says why.
      return true;
    }
  };
}

// The seat stream ends when the token lapses or is spent (in another tab),
// and then its reconnection is refused: the standing stream tells which.
// It tells, too, after any other refusal (a date gone, a token not active).
function seatsRefused(error) {
  state.seatStream = null;
  if (error.status !== 401) refuse(error, "queue");
  // Whatever the refusal, the page still has to learn where its token stands.
  if (state.status !== "expired") watchStanding();
}

// A hidden tab holds no stream, yet a place in the line must still learn of
// its admission: unseen, it lapsed after its 600 s with the tab still saying
// "waiting". So a hidden tab asks the plain route now and then: a waiting
// place after half its estimated wait, at least 15 s and at most 30 s
// apart, an admitted one every 30 s (to see it end). A look is answered
// from the service's memory (0.05 ms of CPU): 20,000 hidden tabs asking
// every 30 s take under 2 % of a 2-core machine. When a look cost 0.5 ms, a
// tab far back asked every 2 min and learned of its admission that late.
const HIDDEN_ASK_MS = { least: 15_000, most: 30_000 };

function hiddenAskDelay() {
  if (state.status !== "waiting") return HIDDEN_ASK_MS.most;
  const half = (state.waitEstimate ?? 0) * 500;
  return Math.min(Math.max(half, HIDDEN_ASK_MS.least), HIDDEN_ASK_MS.most);
}

function askWhileHidden() {
  clearTimeout(state.hiddenAsk);
  state.hiddenAsk = null;
  const live = ["waiting", "active"].includes(state.status) && !state.paid;
  if (visible() || !state.queueToken || !live) return;
  const token = state.queueToken;
  state.hiddenAsk = setTimeout(async () => {
    state.hiddenAsk = null;
    try {
      await askStanding(token);
    } catch (error) {
      // Not answered now: the next look asks again. A token refused for
      // good ends the place, as the stream's refusal would.
      if (error.status === 401 && state.queueToken === token) refuse(error, "queue");
    }
    askWhileHidden();
  }, hiddenAskDelay());
}

document.addEventListener("visibilitychange", () => {
  if (!visible()) {
    closeStreams();
    return askWhileHidden();
  }
  askWhileHidden(); // stops it
  document.title = PAGE_TITLE;
  // Back in view: a seat stream starts with a fresh snapshot, a standing
  // stream with the standing as it is now.
  if (!$("seats").hidden && state.status === "active" && !state.paid) watchSeats();
  else watchStanding();
});
