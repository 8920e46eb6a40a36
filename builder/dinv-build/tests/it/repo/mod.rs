//! Rules about the repository: no import circles, README in step with the code.

mod layering;
mod readme;
