//! Pin every container image in Kubernetes, Argo and Compose manifests to its registry content digest.
