//! `hub-admin`'s operations that need more than the hub's own clients.

pub mod failed;
