// A hold on the booking page: asked for from the seat map (seat-map.js),
// shown with a countdown by the service's clock until it is paid (app.js)
// or runs out.
"use strict";

const HOLD_PENDING_SAID_AFTER_MS = 500;

async function holdSeat(seatNo) {
  // One hold at a time: the Pay button pays one reservation, and a second
  // hold would leave the first one unpaid and out of reach until it lapses.
  if (state.reservation) {
    say("message", `You hold seat ${state.reservation.seat_no} already: pay for it, or let its hold run out to pick another seat.`, "error");
    return;
  }
  // Every seat waits while this one is asked for: a second click is not a
  // second hold. A flag, not a disabled fieldset: disabling 50,000 seats and
  // enabling them again froze the page for seconds.
  if (state.holding) return;
  say("message", "");
  let reservation;
  // The date may change while the hold is asked for; its answer marks only
  // the date it was asked on.
  const dateId = state.date.date_id;
  const onThatDate = () => state.date?.date_id === dateId;
  state.holding = true;
  $("seat-map").setAttribute("aria-busy", "true");
  // On a slow network nothing showed for seconds, and other seats' clicks
  // were ignored without a word.
  const pending = `Holding seat ${seatNo}…`;
  const slow = setTimeout(() => state.holding && say("message", pending, "info"), HOLD_PENDING_SAID_AFTER_MS);
  try {
    // The map knows numbers; the seat's id comes from the listing.
    const page = await request("GET", `/concerts/${state.concertId}/dates/${state.date.date_id}/seats?after_seat_no=${seatNo - 1}&limit=1`, state.queueToken);
    const seat = page.seats[0];
    if (!seat || seat.seat_no !== seatNo) throw new Refusal(409, { code: "seat_unavailable" });
    reservation = await sendKeyed(
      (key) => request("POST", "/reservations", state.queueToken, { seat_id: seat.seat_id }, key),
      `hold:${seat.seat_id}`);
  } catch (error) {
    // Taken: shown so at once, even if the seat stream is slow to say it
    // (and not over a sale the stream said meanwhile).
    const shownFree = seatButtons()[seatNo - 1]?.dataset.status === "free";
    if (error.code === "seat_unavailable" && onThatDate() && shownFree) setSeat(seatNo, "held");
    return refuse(error, "queue");
  } finally {
    state.holding = false;
    $("seat-map").removeAttribute("aria-busy");
    clearTimeout(slow);
    if ($("message").textContent === pending) say("message", "");
  }
  // A retried hold is answered as it stands: one paid meanwhile is not to pay again.
  if (reservation.status !== "held") {
    return say("message", `Seat ${seatNo} is yours already (${reservation.status}).`, "info");
  }
  // A hold is paid with a place in its own concert's queue.
  showHold({ ...reservation, concert_id: state.concertId, starts_at: state.date?.starts_at });
  if (onThatDate()) setSeat(seatNo, "held");
}

function showHold(reservation) {
  // A new hold: the charge field suggests what it needs again.
  if (state.reservation?.reservation_id !== reservation.reservation_id) state.amountTyped = false;
  state.reservation = reservation;
  save();
  $("held-seat").textContent = reservation.seat_no;
  // Every date numbers its seats from 1: the date says which seat it is.
  $("held-date").textContent = reservation.starts_at ? ` on ${dateTime(reservation.starts_at)}` : "";
  $("held-price").textContent = won(reservation.price);
  show("result", false);
  show("hold", true);
  startCountdown(reservation.expires_at);
  showAdmissionEnd();
  bringUp("hold");
  refreshBalance();
}

// An admission that ends before the hold: paying after it needs a new place
// in the queue (the hold itself stays).
function showAdmissionEnd() {
  const until = state.admittedUntil;
  const sooner = Boolean(until && state.reservation) && Date.parse(until) < Date.parse(state.reservation.expires_at);
  show("admission-note", sooner);
  if (sooner) $("admission-end").textContent = clockTime(until);
}

// Counts down to the service's expiry by the service's clock (common.js), so
// a device clock that is off does not end the hold early or late.
function startCountdown(expiresAt) {
  clearInterval(state.countdown);
  const until = Date.parse(expiresAt);
  const tick = () => {
    const left = Math.max(0, Math.round((until - serverNow()) / 1000));
    $("countdown").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    const words = timeLeftInWords(left);
    if ($("countdown-words").textContent !== words) $("countdown-words").textContent = words;
    // A payment sent before the end may be answered after it: the hold is
    // over only if the payment's answer says so (app.js), not the clock.
    if (left === 0 && state.paying) {
      const waiting = "The hold's time is up while its payment is answered: wait for the answer.";
      if ($("message").textContent !== waiting) say("message", waiting, "info");
      return;
    }
    if (left === 0) {
      endHold();
      const next = $("seats").hidden ? "Enter the queue again to book." : "Pick a seat again.";
      say("message", `Your hold ran out. ${next}`, "error");
    }
  };
  tick();
  state.countdown = setInterval(tick, 1000);
}

// What the countdown's live region says: it changes each minute and at 60
// and 30 s, so a screen reader is not read every second. Never more time
// than is left: rounded up, 45 s were "1 minute left to pay".
function timeLeftInWords(left) {
  if (left >= 60) {
    const minutes = Math.floor(left / 60);
    return `At least ${minutes} minute${minutes === 1 ? "" : "s"} left to pay`;
  }
  if (left > 30) return "Less than a minute left to pay";
  return left > 0 ? "Less than 30 seconds left to pay" : "";
}

function endHold() {
  clearInterval(state.countdown);
  const held = state.reservation;
  state.reservation = null;
  save();
  if (held && state.date && !$("seats").hidden) setSeat(held.seat_no, $("seat-map").children[held.seat_no - 1]?.dataset.status);
  const hadFocus = $("hold").contains(document.activeElement);
  show("hold", false);
  if (hadFocus) bringUp($("seats").hidden ? "queue" : "seats");
}
