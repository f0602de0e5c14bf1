//! Multi-stage container builds that reuse layers cached in a registry, with every current builder.
