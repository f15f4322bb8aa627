//! Validation rules, one per file, over the model and its BGP graph
