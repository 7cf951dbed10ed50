//! The operator console: server-rendered pages for Nectar's staff under `/console/` — licenses
//! (search, detail, every action the role allows), customers, the installation monitor, usage
//! analytics and revenue — on the same services and store as the operator API.

pub mod handler;
mod pages;
pub mod session;
mod web;
