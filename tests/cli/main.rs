//! Integration tests: the real `lineup` binary, a fresh temporary directory per test, a real
//! SQLite file. One test binary (as ripgrep and just do) so it links once.

mod big_guides;
mod build;
mod commands;
mod config_errors;
mod guides;
mod harness;
mod hdhr;
mod hostile;
#[path = "../support/http_server.rs"]
mod http_server;
mod logos;
mod m3u;
mod memory;
mod network;
mod numbering;
mod operability;
mod players;
mod probe;
mod properties;
mod signals;
mod state;
mod trust;
mod unattended;
mod upgrade;
#[path = "../support/xmltv.rs"]
mod xmltv_check;
