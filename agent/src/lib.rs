//! Sidecar next to a self-hosted Nectar installation: local license answers, usage buffering, startup check.
