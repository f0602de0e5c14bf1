//! Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one `stack.yaml`.
