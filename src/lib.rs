//! concert: an event-sourced CQRS backend for booking concert seats.

/// Aggregates: the rules, and the events they record.
pub mod aggregates;
/// Typed ids.
pub mod ids;
