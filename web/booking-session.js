// The booking page's memory across a reload, for this tab only: who is
// signed in, the queue place and the hold (app.js keeps the rest).
"use strict";

const SAVED = "concert-booking";

// What a reload must not lose, kept for this tab only (sessionStorage): who
// is signed in, the queue place, the hold and what the last payment bought.
// A spent queue token is not kept: after a payment a reload shows the
// purchase and starts again at the queue.
function save() {
  // Leaving (signed out, or for another user's page): a late answer must
  // not save the last session over what the reload brings up.
  if (state.leaving) return;
  const { userToken, userId, concertId, reservation } = state;
  const queueToken = state.paid ? null : state.queueToken;
  const bought = state.paid ? state.bought : null;
  try {
    sessionStorage.setItem(SAVED, JSON.stringify({ userToken, userId, concertId, queueToken, dateId: state.date?.date_id, reservation, bought }));
  } catch {
    // Storage refused (a private window's quota): the page works without it.
  }
}

function restore() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SAVED));
    if (!saved?.userToken) return;
    const { userId, concertId, queueToken, reservation, bought } = saved;
    Object.assign(state, { userId, concertId, queueToken, reservation, date: saved.dateId ? { date_id: saved.dateId } : null, resuming: true });
    if (bought?.text) {
      Object.assign(state, { paid: true, bought });
      showBought(bought.text);
    }
    signIn(saved.userToken);
  } catch {
    // Unreadable: the page starts at the sign-in.
  }
}

// Forgets this tab's sign-in, queue place and hold, here and in storage (a
// shared browser must not hand them to the next person), and starts over.
function signOut() {
  closeStreams();
  state.leaving = true;
  sessionStorage.removeItem(SAVED);
  location.reload();
}

// Another user signed in on this tab (after the last one's token was
// refused): the page starts afresh as them, so that nothing the last user
// had in flight (a hold, a charge, a stream) lands on their screen. Without
// storage to carry the sign-in over the reload, forgets the booking instead.
function startAfreshAs(userToken, userId) {
  closeStreams();
  state.leaving = true;
  try {
    sessionStorage.setItem(SAVED, JSON.stringify({ userToken, userId }));
  } catch {
    state.leaving = false;
    forgetBooking();
    return false;
  }
  location.reload();
  return true;
}

// After a reload: the queue place as the service has it now, the hold if it
// is still held (the seat map then shows it as yours).
async function resumeBooking() {
  if (!state.queueToken) return;
  $("concert").value = state.concertId;
  showQueued();
  const held = state.reservation;
  state.reservation = null;
  if (held) {
    try {
      const reservation = await request("GET", `/reservations/${held.reservation_id}`, state.queueToken);
      // Paid while the page was away, or paid by a payment whose answer
      // was lost (it said it could not reach the service): the seat is
      // theirs, and saying nothing invited them to buy another.
      if (reservation.status === "confirmed") {
        booked(held, `${seatName(held)} is yours: it was paid while this page was away.`);
        return say("message", "This seat was paid already.", "ok");
      }
      if (reservation.status === "held") showHold({ ...reservation, concert_id: held.concert_id ?? state.concertId, starts_at: held.starts_at });
      // It was gone without a word.
      if (reservation.status === "expired") say("message", `Your hold on seat ${held.seat_no} ran out while this page was closed. Pick a seat again.`, "info");
    } catch (error) {
      // 404: not this user's, or gone with a store that was reset. Any other
      // failure says nothing of the hold: it is shown as it was saved (its
      // countdown ends it on time, and paying it tells how it stands).
      if (error.status !== 404) {
        showHold(held);
        refuse(error, "queue");
      }
    }
  }
  save();
  watchStanding();
}
