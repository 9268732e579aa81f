//! HIM reorganization layer (HIM §3.1): time-window sessions with frequency-ranked feedback.
//! (Being written.)
