//! Hostile input, property-based: random and mutated requests (methods, paths,
//! headers, tokens, JSON and non-JSON bodies) against one running service.
//! Whatever arrives: no 5xx, every error is a problem document with a known
//! code, and no token opens what it must not. Also every field fed SQL
//! metacharacters and huge numbers, and slow clients (slowloris) that must
//! not starve the others, and requests too broken or too large to parse.

mod bodies;
mod fixture;
mod fuzz;
mod generators;
mod judging;
mod sending;
mod slow_clients;
mod sql_and_numbers;
mod token_table;
mod unparsable;
