//! License-free workflow engine: graph validation and execution with jq expressions, HTTP and analytics nodes.
