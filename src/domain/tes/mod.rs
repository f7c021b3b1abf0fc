//! GA4GH TES 1.1 tasks: what clients send and are answered ([`document`]), how a task becomes
//! the submission that runs it ([`parse`], with the rules for its files in [`paths`] and its
//! outputs in [`outputs`]), its TES state ([`state`]), what its executors did ([`runs`]), what
//! each view shows ([`view`]) and what a list asks for ([`list`]).

pub mod document;
pub mod list;
pub mod outputs;
pub mod parse;
pub mod paths;
pub mod runs;
pub mod state;
pub mod view;
