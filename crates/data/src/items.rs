//! Item side features: a companion table keyed by dense item id. (Being written.)
