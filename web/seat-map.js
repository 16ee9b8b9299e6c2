// The seat map of the picked date: one button a seat (a stadium's date has
// 50,000), kept live by the seat stream (booking-streams.js), and walked
// with the arrow keys from a single Tab stop.
"use strict";

// T (taken: held or sold) only where the seat listing drew the map.
const letters = { F: "free", H: "held", S: "sold", T: "taken" };

function seatButtons() {
  return $("seat-map").children;
}

function drawSeats(letterString) {
  const map = $("seat-map");
  map.replaceChildren(...[...letterString].map((letter, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "seat";
    button.dataset.seatNo = index + 1;
    button.textContent = index + 1;
    button.tabIndex = -1;
    return button;
  }));
  // A new snapshot comes with a live token: the map takes holds again,
  // unless the snapshot itself shows this tab's hold sold (`booked`).
  $("seat-picker").removeAttribute("aria-disabled");
  show("seats-frozen", false);
  state.unsoldSeats = [...letterString].filter((letter) => letter !== "S").length;
  [...letterString].forEach((letter, index) => setSeat(index + 1, letters[letter]));
  showFreeSeats([...letterString].filter((letter) => letter === "F").length);
  const first = [...letterString].indexOf("F");
  if (map.children.length) map.children[Math.max(first, 0)].tabIndex = 0;
}

// The seat held now, or the one just bought, on the map's date.
function isMine(seatNo) {
  const mine = state.reservation || state.bought;
  return Boolean(mine) && mine.date_id === state.date.date_id && mine.seat_no === seatNo;
}

// Whether `held` is still within its time by the service's clock: past it,
// the seat may have been freed and bought by someone else.
function holdLasts(held) {
  return Date.parse(held.expires_at) > serverNow();
}

// A seat that is not free is marked, not disabled: a disabled button cannot
// take the focus, and the arrow keys walk every seat.
function setSeat(seatNo, status) {
  const button = seatButtons()[seatNo - 1];
  if (!button) return;
  const was = button.dataset.status;
  if (was && (was === "free") !== (status === "free")) showFreeSeats(state.date.available_seats + (status === "free" ? 1 : -1));
  if (was && (was === "sold") !== (status === "sold")) state.unsoldSeats += status === "sold" ? -1 : 1;
  // While a hold lasts only its own payment can sell its seat: one sold
  // here, and not by this tab's payment, was paid from another tab or
  // window of this booking.
  const held = state.reservation;
  if (status === "sold" && held && !state.paying && holdLasts(held) && held.date_id === state.date.date_id && held.seat_no === seatNo) {
    booked(held, `${seatName(held)} is yours: it was paid from another tab or window.`);
    say("message", "This seat was paid from another tab or window.", "ok");
  }
  const mine = status !== "free" && isMine(seatNo);
  button.dataset.status = status;
  button.className = `seat ${status}${mine ? " mine" : ""}`;
  // Free seats carry no value of their own, so a picker frozen after a
  // payment disables them all through its one attribute.
  if (status === "free") button.removeAttribute("aria-disabled");
  else button.setAttribute("aria-disabled", "true");
  // The state in words as well: colour alone tells a screen reader nothing.
  button.title = `seat ${seatNo}, ${mine ? "yours" : status}`;
  button.setAttribute("aria-label", button.title);
}

// After a payment the map stays in sight, the bought seat shown as yours,
// but takes no hold until the user queues again. One attribute on the
// picker, not one on each of up to 50,000 seats.
function freezeSeats() {
  $("seat-picker").setAttribute("aria-disabled", "true");
  show("seats-frozen", true);
}

function seatsFrozen() {
  return $("seat-picker").getAttribute("aria-disabled") === "true";
}

// The picked date's free seats on its button, kept live by the seat stream.
function showFreeSeats(free) {
  state.date.available_seats = free;
  const button = [...$("date-list").children].find((each) => each.dataset.dateId === state.date.date_id);
  if (button) button.textContent = dateLabel(state.date);
}

// Seats a row of the grid holds as laid out now (it follows the width).
function seatsPerRow() {
  const buttons = seatButtons();
  const top = buttons[0]?.offsetTop;
  let count = 0;
  while (count < buttons.length && buttons[count].offsetTop === top) count++;
  return Math.max(count, 1);
}

// Arrow keys move by a seat or a row, Page Up/Down by ten rows, Home/End to
// the first or last seat; the seat moved to becomes the map's Tab stop.
function moveAcrossSeats(event) {
  const buttons = seatButtons();
  const from = event.target.closest?.(".seat");
  if (!from || !buttons.length) return;
  const at = Number(from.dataset.seatNo) - 1;
  const row = () => seatsPerRow();
  const steps = {
    ArrowRight: () => 1,
    ArrowLeft: () => -1,
    ArrowDown: row,
    ArrowUp: () => -row(),
    PageDown: () => 10 * row(),
    PageUp: () => -10 * row(),
    Home: () => -at,
    End: () => buttons.length - 1 - at,
  };
  if (!steps[event.key]) return;
  event.preventDefault();
  const to = buttons[Math.min(Math.max(at + steps[event.key](), 0), buttons.length - 1)];
  from.tabIndex = -1;
  to.tabIndex = 0;
  to.focus();
}

function pickSeat(event) {
  const button = event.target.closest?.(".seat");
  if (!button) return;
  const stop = $("seat-map").querySelector('[tabindex="0"]');
  if (stop && stop !== button) stop.tabIndex = -1;
  button.tabIndex = 0;
  if (seatsFrozen()) {
    return say("message", "Enter the queue again to book another seat.", "info");
  }
  if (state.reservation && isMine(Number(button.dataset.seatNo))) {
    bringUp("hold");
    return say("message", `You hold seat ${button.dataset.seatNo}: pay for it below.`, "info");
  }
  if (button.dataset.status !== "free") {
    return say("message", `Seat ${button.dataset.seatNo} is ${button.dataset.status}: pick a free seat.`, "error");
  }
  holdSeat(Number(button.dataset.seatNo));
}

// Moves the map's Tab stop and the focus to the seat numbered in the form,
// in the middle of the screen; Enter then holds it.
function goToSeat(event) {
  event.preventDefault();
  const seatNo = Number($("seat-no").value);
  const button = seatButtons()[seatNo - 1];
  if (!Number.isSafeInteger(seatNo) || !button) {
    return say("message", `There is no seat ${$("seat-no").value} on this date: its seats are numbered 1 to ${seatButtons().length}.`, "error");
  }
  const stop = $("seat-map").querySelector('[tabindex="0"]');
  if (stop) stop.tabIndex = -1;
  button.tabIndex = 0;
  button.scrollIntoView({ block: "center" });
  button.focus({ preventScroll: true });
}

document.addEventListener("DOMContentLoaded", () => {
  // One listener for the whole map, not one per seat.
  $("seat-map").addEventListener("click", pickSeat);
  $("seat-map").addEventListener("keydown", moveAcrossSeats);
  $("seat-jump").addEventListener("submit", goToSeat);
});
