//! Processing: from stored order to LMS calls and their results.
