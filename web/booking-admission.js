// Where the queue token stands (from its stream, or asked when the stream
// cannot get through), and the dates its admission opens.
"use strict";

// The tab's title, and what it says once a hidden tab's place is admitted:
// a user waiting in another tab sees it there.
const PAGE_TITLE = document.title;
const ADMITTED_TITLE = "Your turn – concert";

// While no date has a free seat, the dates are asked for again this often:
// seats on hold come free when their holds run out.
const NO_DATE_LOOK_AGAIN_MS = 5000;

function showStanding(standing) {
  state.status = standing.status;
  state.waitEstimate = standing.estimated_wait_seconds;
  state.admittedUntil = standing.expires_at;
  show("standing", true);
  $("status").textContent = standing.status;
  $("status").dataset.status = standing.status;
  $("position").textContent = standing.position;
  countWaitDown(standing.status === "waiting" ? standing.estimated_wait_seconds : null);
  show("waiting-line", standing.status === "waiting");
  show("active-line", standing.status === "active");
  state.soldOut = standing.sold_out === true;
  if (state.soldOut) showSoldOut();
  else show("sold-out-line", false);
  if (standing.expires_at) $("active-until").textContent = clockTime(standing.expires_at);
  showQueued();
  showAdmissionEnd();
  announceStanding(standing);
  // Each admission, the first or one after the user queued again, loads the
  // dates and reopens the picked date's seat map with the new token.
  if (standing.status === "active" && state.admittedToken !== state.queueToken) {
    state.admittedToken = state.queueToken;
    // Sold out, there is nothing to turn to.
    if (!visible() && standing.sold_out !== true) document.title = ADMITTED_TITLE;
    // The next step's heading takes the focus from the queue's, where a
    // keyboard or screen-reader user waited; not from anywhere else.
    const waitedHere = $("queue").contains(document.activeElement);
    loadDates().then(() => waitedHere && !$("dates").hidden && bringUp("dates"));
  }
  if (standing.status === "expired" && !state.paid) {
    // A hold may outlive the token; a payment from another tab spends it too,
    // and this tab learns of that sale only with a new token's seat map.
    const next = state.reservation
      ? "Enter the queue again to pay for your hold (if it was paid meanwhile, it shows as yours)."
      : "Enter the queue again to book.";
    say("message", `Your queue token has ended: its time ran out, or a payment (perhaps from another tab) used it. ${next}`, "error");
    document.title = PAGE_TITLE;
    closeStreams();
    // Their buttons would act with a token that opens nothing now.
    hideDatesAndSeats();
  }
}

// Hides the dates and the seat map. A focus in them would fall to the page:
// it goes to the queue, where the next step is.
function hideDatesAndSeats() {
  const focusLost = ["dates", "seats"].some((id) => !$(id).hidden && $(id).contains(document.activeElement));
  for (const id of ["dates", "seats"]) show(id, false);
  if (focusLost) bringUp("queue");
}

// How often a moving line's standing is read out at most, its status
// changing aside.
const STANDING_SAID_EVERY_MS = 15_000;

// The standing in one sentence for screen readers: when its status changes,
// and as the line moves at most every 15 s. Read out as its parts changed,
// it came out as bare fragments ("0", "about 1 min"), up to one a second.
// An ended token is said by the message. A sell-out is said as a change of
// status: the sections it hides went without a word.
function announceStanding(standing) {
  const element = $("standing-words");
  const soldOut = state.soldOut && !state.paid && standing.status !== "expired";
  const status = soldOut ? "sold_out" : standing.status;
  const words = {
    waiting: `Waiting in the queue: ${standing.position} ahead of you, estimated wait ${waitInWords(standing.estimated_wait_seconds)}.`,
    active: `Admitted until ${clockTime(standing.expires_at)}.`,
    sold_out: "Sold out: nothing more can be booked.",
  }[status] ?? "";
  const statusChanged = element.dataset.status !== status;
  const saidLately = performance.now() - Number(element.dataset.saidAt ?? -Infinity) < STANDING_SAID_EVERY_MS;
  if (element.textContent === words || (!statusChanged && saidLately)) return;
  element.textContent = words;
  element.dataset.status = status;
  element.dataset.saidAt = performance.now();
}

// The estimate is sent again when the position changes, or when it drifts
// from this countdown: between updates it counts down here, by the page's
// own monotonic clock (an interval, not the device's time of day).
// `seconds` null stops it.
function countWaitDown(seconds) {
  clearInterval(state.waitTicker);
  state.waitTicker = null;
  if (seconds === null) return;
  const from = performance.now();
  const tick = () => {
    const left = Math.max(0, seconds - Math.floor((performance.now() - from) / 1000));
    const words = waitInWords(left);
    // The standing is a live region: it is read out only when the words change.
    if ($("wait").textContent !== words) $("wait").textContent = words;
  };
  tick();
  state.waitTicker = setInterval(tick, 1000);
}

function waitInWords(seconds) {
  if (seconds === 0) return "any moment now";
  return seconds < 60 ? "under a minute" : `about ${Math.ceil(seconds / 60)} min`;
}

async function loadDates() {
  clearTimeout(state.datesAgain);
  show("dates", true);
  // Until another token (a new admission) or its end makes it moot.
  const token = state.queueToken;
  const wanted = () => state.queueToken === token && state.status === "active" && !state.paid;
  // A hidden tab asks nothing: it looked every 5 s unseen. It looks once
  // it is shown again.
  const lookAgain = () => {
    if (!wanted()) return;
    if (visible()) return loadDates();
    state.datesAgain = setTimeout(lookAgain, NO_DATE_LOOK_AGAIN_MS);
  };
  const answer = await untilAnswered(
    () => request("GET", `/concerts/${state.concertId}/dates`, token), wanted, "queue");
  if (!answer) return;
  const { dates } = answer;
  $("date-list").replaceChildren(...dates.map(dateButton));
  if (!dates.length && state.soldOut) {
    showSoldOut();
  } else if (!dates.length) {
    // Sold out, held for now, or only past dates: the list cannot tell
    // which (the standing's sold_out can), so the page looks again and
    // shows a date once one frees.
    const none = "No date has a free seat right now. Seats on hold come free again when their holds run out: this list looks again every few seconds.";
    // Said once: the message is a live region, read out again at each change.
    if ($("message").textContent !== none) say("message", none, "info");
    state.datesAgain = setTimeout(lookAgain, NO_DATE_LOOK_AGAIN_MS);
  } else if ($("message").textContent.startsWith("No date has a free seat")) {
    say("message", "");
  }
  const picked = dates.find((date) => date.date_id === state.date?.date_id);
  show("seats", Boolean(picked));
  if (picked) pickDate(picked);
}

// Nothing is left to book: no more looks for a date coming free. Not said
// after buying, when the sale that sold it out may have been this user's.
function showSoldOut() {
  clearTimeout(state.datesAgain);
  if ($("message").textContent.startsWith("No date has a free seat")) say("message", "");
  show("sold-out-line", !state.paid);
  if (state.paid) return;
  // Nothing is held either: no date or seat map is left to show, and only
  // the token's end is left to follow.
  hideDatesAndSeats();
  if (state.seatStream) {
    closeStreams();
    watchStanding();
  }
}

function dateButton(date) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.dateId = date.date_id;
  button.setAttribute("aria-pressed", "false");
  button.textContent = dateLabel(date);
  button.addEventListener("click", () => {
    pickDate(date);
    bringUp("seats");
  });
  return button;
}

function dateLabel(date) {
  return `${dateTime(date.starts_at)} · ${date.available_seats}/${date.total_seats} free · ${won(date.price)}`;
}

function pickDate(date) {
  state.date = date;
  save();
  for (const button of $("date-list").children) {
    const picked = button.dataset.dateId === date.date_id;
    button.classList.toggle("picked", picked);
    button.setAttribute("aria-pressed", String(picked));
  }
  show("seats", true);
  watchSeats();
}
