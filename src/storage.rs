//! Object store from a destination URL (in progress).
