//! Nectar Cloud control plane: the domain (licenses, plans, installations), the services every
//! Lambda function and the admin CLI call, the AWS adapters behind small ports, and the HTTP edge.
//!
//! Functions only wire: read [`config::Config`], build clients once, call a service, map the result
//! with [`http`].

pub mod adapters;
pub mod api;
pub mod aws;
pub mod config;
pub mod domain;
pub mod http;
pub mod service;
pub mod token;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
