//! IDW sequences (IDW §4.1): fixed-length left-padded item sequences, leave-one-out splits and
//! sampled evaluation negatives. (Being written.)
