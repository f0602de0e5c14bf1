//! Change detection and build schedules for monorepos from git diffs and Dependencies files.
