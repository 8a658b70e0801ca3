//! Harvest v3 simulator (work in progress).
