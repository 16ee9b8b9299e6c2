//! Reliability under faults, crowds and hostile input: tests that run the
//! real `concert` binary and break things (SIGKILL of the service and of its
//! PostgreSQL, a stopped or severed PostgreSQL, a full disk, several
//! instances, crowds), copy the store out and back (backup, restore), and
//! then check the log, the audit and the read models. Tests run one at a time (see `harness::serial`).

mod backup;
mod backup_files;
mod backup_password;
mod clocks;
mod crash;
mod db_frozen;
mod db_hung;
mod db_severed;
mod disk;
mod harness;
mod instances;
mod metrics;
mod operators;
mod restore;
mod restore_undone;
mod scale;
mod supervision;
mod workload;
