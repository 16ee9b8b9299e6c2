// The booking page: sign in, queue with a live standing, pick a date, watch
// its seat map change live, hold with a countdown, charge, pay.
"use strict";

const state = {
  userToken: null,
  userId: null,
  concertId: null,
  queueToken: null,
  dateId: null,
  price: 0,
  seats: "",
  reservation: null,
  standing: null, // AbortController of the standing stream
  seatStream: null, // AbortController of the seat stream
  countdown: null,
};

function refuse(error) {
  say("message", explain(error), "error");
}

// The `sub` of a JWT, read (not verified: the service verifies it).
function subjectOf(token) {
  const part = token.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json).sub;
}

async function signIn(token) {
  try {
    state.userToken = token;
    state.userId = subjectOf(token);
  } catch (error) {
    say("message", "That is not a user token (a JWT).", "error");
    return;
  }
  $("who").textContent = `user ${state.userId.slice(0, 8)}`;
  show("sign-in", false);
  show("queue", true);
  try {
    const { concerts } = await request("GET", "/concerts");
    const select = $("concert");
    select.replaceChildren(...concerts.map((concert) => new Option(concert.title, concert.concert_id)));
    // Until the list is there, there is no concert to queue for.
    $("enter-queue").disabled = !concerts.length;
    if (!concerts.length) say("message", "No concert is scheduled yet.", "info");
  } catch (error) {
    refuse(error);
  }
}

async function enterQueue() {
  say("message", "");
  try {
    const ticket = await request("POST", "/queue/tokens", state.userToken, { concert_id: $("concert").value });
    state.concertId = ticket.concert_id;
    state.queueToken = ticket.token;
    $("enter-queue").disabled = true;
    showStanding(ticket);
    watchStanding();
  } catch (error) {
    refuse(error);
  }
}

function watchStanding() {
  state.standing?.abort();
  const controller = new AbortController();
  state.standing = controller;
  let last = null;
  follow("/queue/tokens/current/events", state.queueToken, (type, standing) => {
    if (type === "standing") {
      last = standing;
      showStanding(standing);
    }
  }, { signal: controller.signal, onRefusal: refuse, more: () => last?.status !== "expired" });
}

function showStanding(standing) {
  show("standing", true);
  $("status").textContent = standing.status;
  $("status").dataset.status = standing.status;
  $("position").textContent = standing.position;
  $("wait").textContent = `${standing.estimated_wait_seconds} s`;
  show("waiting-line", standing.status === "waiting");
  show("active-line", standing.status === "active");
  if (standing.expires_at) $("active-until").textContent = new Date(standing.expires_at).toLocaleTimeString();
  if (standing.status === "active" && !state.dateId && $("dates").hidden) loadDates();
  if (standing.status === "expired" && !state.paid) {
    say("message", "Your queue token expired. Enter the queue again to book.", "error");
    $("enter-queue").disabled = false;
    state.seatStream?.abort();
  }
}

async function loadDates() {
  show("dates", true);
  try {
    const { dates } = await request("GET", `/concerts/${state.concertId}/dates`, state.queueToken);
    const list = $("date-list");
    list.replaceChildren(...dates.map((date) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.dateId = date.date_id;
      button.textContent = `${new Date(date.starts_at).toLocaleString()} · ${date.available_seats}/${date.total_seats} free · ${won(date.price)}`;
      button.addEventListener("click", () => pickDate(date));
      return button;
    }));
    if (!dates.length) say("message", "Every date is sold out.", "info");
  } catch (error) {
    refuse(error);
  }
}

function pickDate(date) {
  state.dateId = date.date_id;
  state.price = date.price;
  for (const button of $("date-list").children) button.classList.toggle("picked", button.dataset.dateId === date.date_id);
  show("seats", true);
  state.seatStream?.abort();
  const controller = new AbortController();
  state.seatStream = controller;
  // Compact changes: "2H,17S" (seat number and letter) instead of JSON objects.
  const path = `/concerts/${state.concertId}/dates/${date.date_id}/seats/events?changes=compact`;
  follow(path, state.queueToken, (type, data) => {
    if (type === "snapshot") drawSeats(data.seats);
    if (type === "seat-changes") {
      for (const change of data.split(",")) setSeat(Number(change.slice(0, -1)), letters[change.slice(-1)]);
    }
  }, { signal: controller.signal, onRefusal: refuse });
}

const letters = { F: "free", H: "held", S: "sold" };

function drawSeats(letterString) {
  const map = $("seat-map");
  map.replaceChildren(...[...letterString].map((letter, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "seat";
    button.dataset.seatNo = index + 1;
    button.textContent = index + 1;
    button.addEventListener("click", () => holdSeat(index + 1));
    return button;
  }));
  [...letterString].forEach((letter, index) => setSeat(index + 1, letters[letter]));
}

function setSeat(seatNo, status) {
  const button = $("seat-map").children[seatNo - 1];
  if (!button) return;
  const mine = state.reservation && state.reservation.seat_no === seatNo && status !== "free";
  button.dataset.status = status;
  button.className = `seat ${status}${mine ? " mine" : ""}`;
  button.disabled = status !== "free";
  button.title = `seat ${seatNo}: ${mine ? "yours" : status}`;
}

async function holdSeat(seatNo) {
  say("message", "");
  try {
    // The map knows numbers; the seat's id comes from the listing.
    const page = await request("GET", `/concerts/${state.concertId}/dates/${state.dateId}/seats?after_seat_no=${seatNo - 1}&limit=1`, state.queueToken);
    const seat = page.seats[0];
    if (!seat || seat.seat_no !== seatNo) throw new Refusal(409, { code: "seat_unavailable" });
    const reservation = await request("POST", "/reservations", state.queueToken, { seat_id: seat.seat_id });
    state.reservation = reservation;
    setSeat(seatNo, "held");
    $("held-seat").textContent = seatNo;
    $("held-price").textContent = won(reservation.price);
    show("hold", true);
    startCountdown(new Date(reservation.expires_at));
    refreshBalance();
  } catch (error) {
    refuse(error);
  }
}

function startCountdown(until) {
  clearInterval(state.countdown);
  const tick = () => {
    const left = Math.max(0, Math.round((until - Date.now()) / 1000));
    $("countdown").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0) {
      clearInterval(state.countdown);
      say("message", "Your hold ran out. Pick a seat again.", "error");
      show("hold", false);
    }
  };
  tick();
  state.countdown = setInterval(tick, 1000);
}

async function refreshBalance() {
  try {
    const { balance } = await request("GET", `/users/${state.userId}/balance`, state.userToken);
    $("balance").textContent = won(balance);
  } catch (error) {
    refuse(error);
  }
}

async function charge(event) {
  event.preventDefault();
  say("message", "");
  try {
    const amount = Number($("amount").value);
    const { balance } = await request("POST", `/users/${state.userId}/balance/charges`, state.userToken, { amount }, { "Idempotency-Key": idempotencyKey() });
    $("balance").textContent = won(balance);
    say("message", `Charged ${won(amount)}.`, "ok");
  } catch (error) {
    refuse(error);
  }
}

async function pay() {
  say("message", "");
  try {
    const payment = await request("POST", "/payments", state.queueToken, { reservation_id: state.reservation.reservation_id }, { "Idempotency-Key": idempotencyKey() });
    state.paid = true;
    clearInterval(state.countdown);
    show("hold", false);
    show("result", true);
    $("result-text").textContent = `Seat ${state.reservation.seat_no} is yours: paid ${won(payment.amount)}, balance ${won(payment.balance)}. Payment ${payment.payment_id}.`;
    say("message", "Payment complete.", "ok");
    state.seatStream?.abort();
  } catch (error) {
    refuse(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sample-user").addEventListener("click", async () => {
    try {
      const minted = await request("POST", "/demo/user-tokens");
      signIn(minted.token);
    } catch (error) {
      say("message", error.status === 404 ? "Sample users exist only with serve --demo: paste a user token." : explain(error), "error");
    }
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("user-token").value.trim());
  });
  $("enter-queue").addEventListener("click", enterQueue);
  $("charge-form").addEventListener("submit", charge);
  $("pay").addEventListener("click", pay);
});
