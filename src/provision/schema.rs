//! Schema differences between blue and green, classified by whether row-based replication from one to the other keeps working.
