// The booking page: sign in, queue with a live standing, pick a date, watch
// its seat map change live, hold with a countdown, charge, pay.
"use strict";

const state = {
  userToken: null,
  userId: null,
  concertId: null,
  queueToken: null,
  status: null, // the queue token's last known status
  admittedUntil: null, // when its admission ends
  admittedToken: null, // the queue token whose admission last loaded the dates
  date: null, // the picked date; its available_seats follows the seat stream
  reservation: null, // the seat held now, until it is paid or runs out
  bought: null, // the seat the last payment bought: shown as yours
  paid: false,
  soldOut: false, // the last standing said nothing is left to book
  soldOutAsk: null, // the timer of the next question whether it did
  unsoldSeats: 0, // seats of the picked date's map not sold
  holding: false, // a hold is being asked for
  paying: false, // this tab's payment is being asked for
  amountTyped: false, // the charge field holds the user's own amount, not the hold's need
  leftHold: null, // a hold left to run out by queueing for another concert
  resuming: false, // restored after a reload, until the first sign-in
  standing: null, // AbortController of the standing stream
  seatStream: null, // AbortController of the seat stream
  countdown: null,
  waitTicker: null, // counts the estimated wait down between updates
  datesAgain: null, // looks at the dates again while none has a free seat
  hiddenAsk: null, // the timer of a hidden tab's next look at its standing
  waitEstimate: null, // the last estimated wait, in seconds
};


const MAX_CHARGE = 1_000_000_000;

// A refused request, explained. A 401 says which credential to renew: the
// user token (sign in again) or the queue token (enter the queue again).
function refuse(error, credential) {
  if (error.status === 401 && credential === "user") return askToSignInAgain(error.code);
  if (error.status === 401 && credential === "queue") {
    state.status = "expired";
    document.title = PAGE_TITLE; // not "Your turn" for a place that is gone
    showQueued();
    return say("message", `Your queue token is no longer valid: enter the queue again. (${error.code})`, "error");
  }
  say("message", explain(error), kindOf(error));
}

// Scrolls a section into view and moves focus to its heading, for when the
// control that had the focus went away (hidden or disabled).
function bringUp(sectionId) {
  $(sectionId).scrollIntoView({ block: "nearest" });
  $(sectionId).querySelector("h2").focus({ preventScroll: true });
}

// Runs one user action with its control disabled, so a double click or a
// second Enter sends it once (one action, one Idempotency-Key). A disabled
// control drops the focus to the page: it gets it back when usable again.
async function busy(control, action) {
  const focused = document.activeElement;
  const pressed = Date.now();
  control.disabled = true;
  try {
    const done = await action();
    // Done: a press soon after this one is its double (a refused or failed
    // action is pressed again on purpose).
    control.dataset.settlesAt = String(pressed + SETTLE_MS);
    return done;
  } finally {
    control.disabled = false;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (lost && focused && focused !== document.body && !focused.matches(":disabled")) focused.focus();
  }
}

// A control whose action was done ignores presses until 0.6 s after the
// first: a person's double click (its second press up to half a second
// later) or a held Enter key (whose form's submission clicks its button)
// charged twice once a quick answer had enabled it again. The control's
// state itself is left to what the answer showed (a queued page disables
// "Enter the queue").
const SETTLE_MS = 600;

document.addEventListener("click", (event) => {
  const control = event.target.closest?.("[data-settles-at]");
  if (control && Date.now() < Number(control.dataset.settlesAt)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// The `sub` of a JWT, read (not verified: the service verifies it).
function subjectOf(token) {
  const part = token.split(".")[1] || "";
  const { sub } = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
  // A user id is a UUID (API.md), and it goes into request paths.
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  if (typeof sub !== "string" || !uuid.test(sub)) throw new Error("no user id");
  return sub;
}

async function signIn(token) {
  let userId;
  let balance;
  try {
    userId = subjectOf(token);
  } catch (error) {
    say("message", "That is not a user token (a JWT naming a user id).", "error");
    return;
  }
  say("message", "");
  // The service checks the token now, so a forged or expired one is refused
  // here rather than at the first booking step.
  try {
    ({ balance } = await request("GET", `/users/${userId}/balance`, token));
  } catch (error) {
    const refused = `That user token is not accepted: it is forged, expired or from another issuer. (${error.code})`;
    say("message", error.status === 401 ? refused : explain(error), "error");
    return;
  }
  if (state.userId && state.userId !== userId && startAfreshAs(token, userId)) return;
  state.userToken = token;
  state.userId = userId;
  save();
  // As every balance read does: a hold made while the last sign-in was
  // refused left the field at the page's default, and charged ₩150,000
  // for a ₩1,000 seat.
  showBalance(balance);
  $("who").textContent = `user ${userId.slice(0, 8)}`;
  show("sign-out", true);
  show("sign-in", false);
  show("queue", true);
  bringUp($("hold").hidden ? "queue" : "hold");
  if (!$("concert").options.length) await loadConcerts();
  if (state.resuming) {
    state.resuming = false;
    resumeBooking();
  }
}

// The user token was refused later (it expired): sign in again. The queue
// place and the hold stay, as they hang on the queue token.
function askToSignInAgain(code) {
  show("sign-in", true);
  bringUp("sign-in");
  say("message", `Your sign-in is no longer valid (expired or not accepted): sign in again. (${code})`, "error");
}

// Another user signed in and the page cannot start afresh (no storage): the
// queue place and the hold were the last user's.
function forgetBooking() {
  closeStreams();
  endHold();
  countWaitDown(null);
  Object.assign(state, { concertId: null, queueToken: null, status: null, admittedToken: null, date: null, bought: null, paid: false, soldOut: false });
  for (const id of ["standing", "dates", "seats", "result"]) show(id, false);
  $("standing-words").textContent = "";
  delete $("standing-words").dataset.status;
  showQueued();
}

async function loadConcerts() {
  const concerts = await untilAnswered(() => request("GET", "/concerts"), () => true);
  if (!concerts) return;
  $("concert").replaceChildren(...concerts.concerts.map((concert) => new Option(concert.title, concert.concert_id)));
  showQueued();
  if (!concerts.concerts.length) lookForConcertsLater();
  else if ($("message").textContent.startsWith("No concert is scheduled yet")) say("message", "");
}

// Until a concert is scheduled, the list is asked for again every 15 s, so
// one scheduled later appears without a reload: one timer however often
// the user signs in, and the message said again only where nothing else
// is (not over whatever the user reads meanwhile).
let concertsLookedFor = null;
let toldNoConcert = false;
function lookForConcertsLater() {
  if (concertsLookedFor) return;
  const shown = "No concert is scheduled yet: looking again every 15 seconds.";
  if (!toldNoConcert || $("message").hidden) say("message", shown, "info");
  toldNoConcert = true;
  concertsLookedFor = setTimeout(() => {
    concertsLookedFor = null;
    if (!$("concert").options.length && state.userToken) loadConcerts();
  }, 15_000);
}

// Asks until answered while `wanted()` says the answer is still wanted: a
// busy or unreachable service is asked again, less often each time, with
// the reason shown meanwhile (and taken away once answered; any other
// message stays: the one that a hold was left behind vanished as the new
// concert's dates came). A refusal is explained, and gives undefined.
async function untilAnswered(ask, wanted, credential) {
  let askedAgain = false;
  for (let pause = 1000; ; pause = Math.min(pause * 2, 10_000)) {
    try {
      const answer = await ask();
      if (!wanted()) return undefined;
      if (askedAgain) say("message", "");
      return answer;
    } catch (error) {
      if (!wanted()) return undefined;
      if (!isTransient(error)) return refuse(error, credential);
      say("message", `${explain(error)} Asking again…`, kindOf(error));
      askedAgain = true;
      await sleep(pause);
      if (!wanted()) return undefined;
    }
  }
}

// While a queue place is live the page shows that concert's line and dates,
// and there is nothing to enter again for it. Picking another concert
// offers to queue there instead: the place left behind runs on in the
// service until it lapses (entering its concert again gets it back). The
// list was locked, so a user waiting in a long line, or a sold-out
// concert's, could leave it only by signing out.
function showQueued() {
  const queued = Boolean(state.queueToken) && !state.paid && state.status !== "expired";
  const elsewhere = queued && $("concert").value !== state.concertId;
  $("enter-queue").disabled = !$("concert").options.length || (queued && !elsewhere);
  $("enter-queue").textContent = elsewhere ? "Queue for this concert instead" : "Enter the queue";
}

async function enterQueue() {
  say("message", "");
  // A hold is paid only with a place in its own concert's queue: queueing
  // for another leaves it to run out, and frees the page to hold there.
  const held = state.reservation;
  const leavesHold = Boolean(held?.concert_id) && held.concert_id !== $("concert").value;
  const leavesLine = Boolean(state.queueToken) && state.concertId !== $("concert").value;
  let ticket;
  try {
    ticket = await busy($("enter-queue"), () =>
      request("POST", "/queue/tokens", state.userToken, { concert_id: $("concert").value }));
  } catch (error) {
    return refuse(error, "user");
  }
  Object.assign(state, { concertId: ticket.concert_id, queueToken: ticket.token, status: ticket.status, paid: false });
  save();
  if (leavesLine) {
    // The other concert's streams and dates: this token opens none of them.
    closeStreams();
    for (const id of ["dates", "seats", "sold-out-line"]) show(id, false);
  }
  if (leavesHold) {
    endHold();
    state.leftHold = held;
    say("message", `Your hold on seat ${held.seat_no} of another concert is left to run out: queue for that concert again to pay for it.`, "info");
  } else if (state.leftHold?.concert_id === ticket.concert_id) {
    await takeBackHold(ticket.token);
  }
  if (ticket.status !== "active") for (const id of ["dates", "seats"]) show(id, false);
  showStanding(ticket);
  bringUp("queue");
  watchStanding();
}

// Back in the queue of the concert whose hold was left behind: the hold,
// if it still runs, is shown again before the seat map opens (which then
// shows its seat as yours). It was not: the user saw their own seat as
// someone else's hold, and could hold a second one.
async function takeBackHold(token) {
  const held = state.leftHold;
  state.leftHold = null;
  try {
    const reservation = await request("GET", `/reservations/${held.reservation_id}`, token);
    if (reservation.status === "held" && !state.reservation) {
      showHold({ ...reservation, concert_id: held.concert_id, starts_at: held.starts_at });
    }
  } catch {
    // Gone, or not to be read now: there is nothing to take back.
  }
}

// The balance as the service has it now (undefined when it cannot say).
async function refreshBalance() {
  try {
    const { balance } = await request("GET", `/users/${state.userId}/balance`, state.userToken);
    showBalance(balance);
    return balance;
  } catch (error) {
    refuse(error, "user");
  }
}

// Shows the balance, and fills the charge field with what the held seat
// still needs, unless the user typed an amount of their own: a fixed
// 150,000 fell short of a 200,000 seat and charged four times a 40,000 one.
function showBalance(balance) {
  $("balance").textContent = won(balance);
  const held = state.reservation;
  if (held && !state.amountTyped && held.price > balance) $("amount").value = String(held.price - balance);
}

// Also when the browser's own validation stops the form (-5, 1.5), so an
// earlier message does not stay behind.
function askForAmount() {
  say("message", "Enter an amount in won (1 to 1,000,000,000).", "error");
}

async function charge(event) {
  event.preventDefault();
  const button = $("charge-form").querySelector("button");
  if (button.disabled) return;
  // An empty field reads as 0: ask for an amount instead of sending it.
  const amount = Number($("amount").value);
  if (!Number.isInteger(amount) || amount < 1 || amount > MAX_CHARGE) return askForAmount();
  say("message", "");
  try {
    const { balance } = await busy(button, () => sendKeyed((key) =>
      request("POST", `/users/${state.userId}/balance/charges`, state.userToken, { amount }, key), `charge:${state.userId}:${amount}`));
    showBalance(balance);
    say("message", `Charged ${won(amount)}.`, "ok");
  } catch (error) {
    refuse(error, "user");
    // A refused charge (the balance's limit) or one cut short: the balance
    // shown may be stale.
    if (error.status !== 401) refreshBalance();
  }
}

async function pay() {
  say("message", "");
  const held = state.reservation;
  let payment;
  state.paying = true;
  try {
    payment = await busy($("pay"), () => sendKeyed((key) =>
      request("POST", "/payments", state.queueToken, { reservation_id: held.reservation_id }, key), `pay:${held.reservation_id}`));
  } catch (error) {
    if (error.code === "hold_expired") endHold();
    if (error.code === "insufficient_balance") return tellWhatIsMissing(error, held);
    // Paid already, from another tab or window of this booking: the seat
    // is the user's, and the hold shown here is over. (The other tab's
    // payment spent the shared token too, so this one may hear 401, having
    // seen the seat sold on its map while it paid.)
    const soldMeanwhile = seatButtons()[held.seat_no - 1]?.dataset.status === "sold"
      && state.date?.date_id === held.date_id && holdLasts(held);
    if (error.code === "already_paid" || (error.status === 401 && soldMeanwhile)) {
      booked(held, `${seatName(held)} is yours: it was paid from another tab or window.`);
      return say("message", "This seat was paid already.", "ok");
    }
    return refuse(error, "queue");
  } finally {
    state.paying = false;
  }
  booked(held, `${seatName(held)} is yours: paid ${won(payment.amount)}, balance ${won(payment.balance)}. Payment ${payment.payment_id}.`);
  say("message", "Payment complete.", "ok");
}

// A payment refused for the balance: says how much more to charge (the
// charge field then holds it), which the refusal alone does not.
async function tellWhatIsMissing(error, held) {
  refuse(error, "queue");
  const balance = await refreshBalance();
  if (balance === undefined || balance >= held.price || state.reservation !== held) return;
  say("message", `Your balance is too low for this seat: charge at least ${won(held.price - balance)} more. (${error.code})`, "error");
}

// The seat is the user's and the queue token is spent: the seat map stops,
// showing the bought seat as theirs, until the user queues again.
function booked(held, text) {
  state.paid = true;
  state.bought = { ...held, text };
  closeStreams();
  showBought(text);
  bringUp("result");
  endHold();
  if (isMine(held.seat_no)) setSeat(held.seat_no, "sold");
  $("status").textContent = "used by your payment";
  $("status").dataset.status = "done";
  show("active-line", false);
  for (const button of $("date-list").children) button.disabled = true;
  freezeSeats();
  showQueued();
  save();
}

// A held or bought seat as its receipt names it: every date numbers its
// seats from 1, so the date says which seat it is.
function seatName(held) {
  const when = held.starts_at ? ` on ${dateTime(held.starts_at)}` : "";
  return `Seat ${held.seat_no}${when}`;
}

// What the last payment bought, also after a reload (booking-session.js).
function showBought(text) {
  show("result", true);
  $("result-text").textContent = `${text} To book another seat, enter the queue again.`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("sample-user").addEventListener("click", async () => {
    try {
      // A double click signs in one sample user, not two.
      const minted = await busy($("sample-user"), () => request("POST", "/demo/user-tokens"));
      signIn(minted.token);
    } catch (error) {
      // The service mints sample users only with --demo and no identity
      // provider (CONCERT_AUTH_JWKS_FILE) configured.
      const unavailable = "Sample users exist only when the service runs with serve --demo and issues its own user tokens: paste a user token.";
      say("message", error.status === 404 ? unavailable : explain(error), "error");
    }
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(pastedToken($("user-token").value));
  });
  $("enter-queue").addEventListener("click", enterQueue);
  $("concert").addEventListener("change", showQueued);
  $("charge-form").addEventListener("submit", charge);
  // A held Enter key repeats its press: one charge per press, not per repeat.
  $("charge-form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.repeat) event.preventDefault();
  });
  $("amount").addEventListener("invalid", askForAmount);
  $("amount").addEventListener("input", () => { state.amountTyped = true; });
  $("pay").addEventListener("click", pay);
  // The queue is a stadium's seat map above the receipt.
  $("book-another").addEventListener("click", () => bringUp("queue"));
  $("sign-out").addEventListener("click", signOut);
  // The wallet may have been charged elsewhere (another tab, the API)
  // while the page was out of sight.
  // (Coming back fires both events: one read.)
  let balanceReadAt = 0;
  const balanceMayHaveMoved = () => {
    if (!visible() || !state.userToken || Date.now() - balanceReadAt < 1000) return;
    balanceReadAt = Date.now();
    refreshBalance();
  };
  document.addEventListener("visibilitychange", balanceMayHaveMoved);
  window.addEventListener("focus", balanceMayHaveMoved);
  restore();
});
