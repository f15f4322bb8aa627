//! Back ends: every artifact calplan compiles from the model
