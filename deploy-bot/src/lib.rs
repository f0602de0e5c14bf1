//! `GitOps` deploys: pull requests with manifests to a cluster repo, and an agent that verifies, validates and applies what was merged.
