//! Every integration test in one binary: `cargo test --test api` runs them all, a module's
//! name picks some (`cargo test --test api hostile::`). The service is spawned in-process on a
//! random port (`helpers::TestApp`; `TEST_LOG=1` shows its logs), or as the built binary where
//! the process itself is under test (signals, exit status, logs, memory).

mod cli;
mod corpus;
mod endpoints;
mod helpers;
mod hostile;
mod memory;
mod models;
mod reference;
mod reliability;
