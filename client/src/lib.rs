//! Installation-side client: offline lease verification, heartbeats, persisted state, Cloud API calls.
